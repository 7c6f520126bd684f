//! The embedding API end to end on a tiny trained run: `TrainedModel` predicts
//! exactly what `tessera eval` computes (the same path: run directory →
//! model → checkpoint → `evaluate`), for any number of threads and any
//! batching, from several threads at once; bad input is a typed error; the
//! constraint projection's backward pass and its residual's match finite
//! differences; and the two examples run.

#[path = "../examples/predict.rs"]
#[allow(dead_code)]
mod predict_example;
#[path = "../examples/projection.rs"]
#[allow(dead_code)]
mod projection_example;

use std::ops::ControlFlow;
use std::path::PathBuf;

use tessera_scenarios::Scenario;
use tessera_solver::Model;
use tessera_solver::RunData;
use tessera_solver::SolverError;
use tessera_solver::embed::{ConstraintProjection, TrainedModel, WorkerPool};
use tessera_solver::evaluate;
use tessera_solver::{Checkpoint, RunDir, TrainOptions, Trainer, eval_seed};

fn tiny_scenario() -> Scenario {
    Scenario::from_str(include_str!("../examples/tiny.toml"), "tiny.toml").unwrap()
}

/// Trains the tiny scenario into a fresh directory and returns it with the data.
fn tiny_run(name: &str) -> (PathBuf, RunData) {
    let scenario = tiny_scenario();
    let dir = std::env::temp_dir().join(format!("tessera-embed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = RunData::load(&scenario, true).unwrap();
    let mut model = Model::new(&scenario).unwrap();
    let options = TrainOptions::default();
    Trainer::new(&mut model, &scenario, &data, &RunDir::new(&dir))
        .train(options, |_, _| ControlFlow::Continue(()))
        .unwrap();
    (dir, data)
}

/// What `tessera eval` computes: the run's model restored from its checkpoint
/// and evaluated in chunks of the batch size with the evaluation seed.
fn eval_predictions(dir: &PathBuf, data: &RunData) -> Vec<Vec<f64>> {
    let run = RunDir::new(dir);
    let scenario = run.read_config().unwrap();
    let mut model = Model::new(&scenario).unwrap();
    let path = run.checkpoint();
    Checkpoint::load(&path)
        .unwrap()
        .restore_model(&mut model, &path)
        .unwrap();
    let count = data.test.len();
    let seed = eval_seed(scenario.seed);
    let chunk = scenario.training.batch_size;
    evaluate(&mut model, &data.test, count, chunk, seed)
        .unwrap()
        .predictions
}

#[test]
fn predictions_equal_eval_for_any_threads_batching_and_concurrent_callers() {
    let (dir, data) = tiny_run("equal");
    let expected = eval_predictions(&dir, &data);
    let model = TrainedModel::load(&dir).unwrap();
    assert_eq!(model.dims(), vec![8, 16]);
    assert_eq!(
        (model.ic_len(), model.field_len(), model.n_experts()),
        (16, 128, 2)
    );
    let n = data.test.len();
    let all: Vec<f64> = data
        .test
        .initial_conditions(&(0..n).collect::<Vec<_>>())
        .concat();
    // The whole test set as one batch (eval used chunks of two), on 1 and 3 threads.
    for threads in [1, 3] {
        let out = model.predict(&all, threads).unwrap();
        assert_eq!(out.batch(), n);
        assert_eq!(out.statuses.len(), n * 2);
        for (b, truth) in expected.iter().enumerate() {
            assert_eq!(
                out.field(b),
                truth.as_slice(),
                "sample {b}, {threads} threads"
            );
        }
    }
    // One initial condition at a time, from four threads at once on one model.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for (b, truth) in expected.iter().enumerate() {
                    let out = model.predict(data.test.initial_condition(b), 2).unwrap();
                    assert_eq!(out.field(0), truth.as_slice(), "sample {b} alone");
                    assert!(out.statuses_of(0).iter().all(|s| s.iterations > 0));
                }
            });
        }
    });
    // The example runs on the same run directory.
    let out = predict_example::run(&dir, 1).unwrap();
    assert_eq!(out.fields.len(), 128);
    assert!(out.fields.iter().all(|v| v.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_runs_and_bad_input_are_typed_errors() {
    let missing = std::env::temp_dir().join("tessera-embed-no-such-run");
    let err = TrainedModel::load(&missing).err().unwrap();
    assert!(matches!(err, SolverError::RunConfig { .. }), "{err}");
    assert!(err.to_string().contains("no-such-run"), "{err}");
    let (dir, _) = tiny_run("bad");
    let model = TrainedModel::load(&dir).unwrap();
    let err = model.predict(&[0.5; 15], 1).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let err = model.predict(&[], 1).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    // The grid: 8 time levels over [0, 500], 16 cell centres of [0, 1] (the
    // tiny scenario is diffusion–sorption, whose x points PDEBench puts at
    // cell centres); no third axis.
    let t = model.coordinates(0).unwrap();
    let x = model.coordinates(1).unwrap();
    assert_eq!((t.len(), x.len()), (8, 16));
    for (i, &v) in t.iter().enumerate() {
        assert!((v - 500.0 * i as f64 / 7.0).abs() < 1e-12, "t[{i}] = {v}");
    }
    for (i, &v) in x.iter().enumerate() {
        assert!((v - (i as f64 + 0.5) / 16.0).abs() < 1e-15, "x[{i}] = {v}");
    }
    let err = model.coordinates(2).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let mut ic = vec![0.5; 32];
    ic[20] = f64::NAN;
    let err = model.predict(&ic, 1).unwrap_err();
    assert!(
        matches!(err, SolverError::NonFinite { count: 1, .. }),
        "{err}"
    );
    // A truncated checkpoint is an error, not a partial model.
    let path = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = TrainedModel::load(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            SolverError::Checkpoint { .. } | SolverError::Safetensors { .. }
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A trained model's prediction differentiated in its initial conditions:
/// the kept forward pass predicts what `predict` does, bit for bit; the
/// gradient matches central differences of the predictions (the run's
/// solves driven to round-off in its config, which changes no variable) and
/// does not depend on the threads; a kept pass is differentiated by the
/// model that made it only, and bad cotangents are typed errors.
#[test]
fn a_trained_models_prediction_differentiated_in_its_initial_conditions() {
    let (dir, data) = tiny_run("ic-gradient");
    let config = dir.join("config.toml");
    let mut scenario = Scenario::from_file(&config).unwrap();
    for setting in [
        "constraint.rtol=1e-14",
        "constraint.atol=1e-15",
        "constraint.max_iters=500",
    ] {
        scenario.set(setting).unwrap();
    }
    std::fs::write(&config, scenario.to_toml_string()).unwrap();
    let model = TrainedModel::load(&dir).unwrap();
    let ics = data.test.initial_conditions(&[0, 1]).concat();
    let forward = model.forward(&ics, 2).unwrap();
    let predicted = model.predict(&ics, 2).unwrap();
    assert_eq!(forward.predictions(), &predicted);
    assert!(predicted.statuses.iter().all(|s| s.converged()));
    let wave = |i: usize, a: f64| ((i as f64) * a).sin();
    let fields_bar: Vec<f64> = (0..predicted.fields.len()).map(|i| wave(i, 1.3)).collect();
    let ic_bar = model.backward(&forward, &fields_bar, 1).unwrap();
    assert_eq!(ic_bar, model.backward(&forward, &fields_bar, 3).unwrap());
    assert_eq!(ic_bar.len(), ics.len());
    let direction: Vec<f64> = (0..ics.len()).map(|i| wave(i, 0.71)).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    // Where a solve stops moves the fields by about 1e-10 between nearby
    // initial conditions even at these tolerances: a step of 1e-5 keeps
    // that out of the differences.
    let eps = 1e-5;
    let loss = |sign: f64| {
        let moved: Vec<f64> = ics
            .iter()
            .zip(&direction)
            .map(|(x, d)| x + sign * eps * d)
            .collect();
        dot(&model.predict(&moved, 2).unwrap().fields, &fields_bar)
    };
    let numeric = (loss(1.0) - loss(-1.0)) / (2.0 * eps);
    let analytic = dot(&ic_bar, &direction);
    assert!(
        (analytic - numeric).abs() <= 1e-5 * analytic.abs().max(numeric.abs()),
        "analytic {analytic:e}, finite differences {numeric:e}"
    );
    assert!(analytic.abs() > 1e-6, "a vanishing gradient tests nothing");
    let other = TrainedModel::load(&dir).unwrap();
    let err = other.backward(&forward, &fields_bar, 1).unwrap_err();
    assert!(matches!(err, SolverError::ForeignForward), "{err}");
    let err = model.backward(&forward, &fields_bar[1..], 1).unwrap_err();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let mut bad = fields_bar.clone();
    bad[7] = f64::INFINITY;
    let err = model.backward(&forward, &bad, 1).unwrap_err();
    assert!(
        matches!(err, SolverError::NonFinite { count: 1, .. }),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A projection takes its scenario's `device`: on the CPU it solves there;
/// a GPU that cannot be used is a typed error, never a silent CPU run.
#[test]
fn a_projection_runs_where_its_scenario_says() {
    let mut scenario = tiny_scenario();
    let cpu = ConstraintProjection::from_scenario(&scenario).unwrap();
    assert!(!cpu.solves_on_gpu());
    scenario.set("device=cuda").unwrap();
    let err = ConstraintProjection::from_scenario(&scenario)
        .err()
        .expect("no usable GPU here");
    let why = if cfg!(feature = "cuda") {
        "no CUDA driver found"
    } else {
        "built without the `cuda` feature"
    };
    assert!(err.to_string().contains(why), "{err}");
}

/// The projection example: the residual at the sampled points drops to the
/// solver's tolerance, bounded by the solver's own final residual.
#[test]
fn projection_example_meets_the_pde_at_the_sampled_points() {
    let report = projection_example::run().unwrap();
    assert!(report.converged, "{report:?}");
    assert!(report.after <= report.solver_residual, "{report:?}");
    assert!(report.after < 1e-6 * report.before, "{report:?}");
}

/// `⟨ū, du⟩` for a basis perturbation `dB` equals `⟨B̄, dB⟩` (central
/// differences of the projected field).
#[test]
fn projection_backward_matches_finite_differences() {
    let mut scenario = tiny_scenario();
    scenario.set("constraint.rtol=1e-14").unwrap();
    scenario.set("constraint.atol=1e-15").unwrap();
    scenario.set("constraint.max_iters=500").unwrap();
    let layer = ConstraintProjection::from_scenario(&scenario).unwrap();
    let (g, n) = (layer.field_len(), 5);
    let wave = |i: usize, a: f64| ((i as f64) * a).sin();
    let basis: Vec<f64> = (0..g * n).map(|i| 0.5 + wave(i, 0.37)).collect();
    let ic: Vec<f64> = (0..layer.ic_len())
        .map(|i| 0.5 + 0.2 * wave(i, 0.2))
        .collect();
    let u_bar: Vec<f64> = (0..g).map(|i| wave(i, 1.3)).collect();
    let direction: Vec<f64> = (0..g * n).map(|i| wave(i, 0.71)).collect();
    let pool = WorkerPool::new(2).unwrap();
    let forward = layer.solve(&basis, n, &ic, &pool).unwrap();
    assert!(forward.all_converged(), "{:?}", forward.statuses);
    let gradient = layer.backward(&forward, &basis, &u_bar, &pool).unwrap();
    let analytic: f64 = gradient.iter().zip(&direction).map(|(a, b)| a * b).sum();
    // The solution is strongly non-linear in the basis here (differences with
    // steps of 1e-4 and 1e-5 still disagree), so the step is small.
    let eps = 1e-7;
    let shifted = |sign: f64| -> f64 {
        let b: Vec<f64> = basis
            .iter()
            .zip(&direction)
            .map(|(b, d)| b + sign * eps * d)
            .collect();
        let u = layer.solve(&b, n, &ic, &pool).unwrap().u;
        u.iter().zip(&u_bar).map(|(u, w)| u * w).sum()
    };
    let numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
    let scale = analytic.abs().max(1.0);
    assert!(
        (analytic - numeric).abs() < 1e-5 * scale,
        "analytic {analytic}, finite differences {numeric}"
    );
    let err = layer.solve(&basis[1..], n, &ic, &pool).err().unwrap();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let mut bad = u_bar.clone();
    bad[3] = f64::NAN;
    let err = layer.backward(&forward, &basis, &bad, &pool).err().unwrap();
    assert!(
        matches!(err, SolverError::NonFinite { count: 1, .. }),
        "{err}"
    );
}

/// `⟨F̄, dF⟩` for a field perturbation `du` equals `⟨ū, du⟩` (central
/// differences of the residual); a batch of two gives each field's result;
/// a cotangent of another length or with NaN is a typed error.
#[test]
fn residual_backward_matches_finite_differences() {
    let layer = ConstraintProjection::from_scenario(&tiny_scenario()).unwrap();
    let (g, m) = (layer.field_len(), layer.n_equations());
    let wave = |i: usize, a: f64| ((i as f64) * a).sin();
    // Diffusion–sorption's retardation needs u > 0.
    let u: Vec<f64> = (0..g).map(|i| 0.6 + 0.3 * wave(i, 0.37)).collect();
    let f_bar: Vec<f64> = (0..g * m).map(|i| wave(i, 1.3)).collect();
    let direction: Vec<f64> = (0..g).map(|i| wave(i, 0.71)).collect();
    let pool = WorkerPool::new(2).unwrap();
    let u_bar = layer.residual_backward(&u, &f_bar, &pool).unwrap();
    let analytic: f64 = u_bar.iter().zip(&direction).map(|(a, b)| a * b).sum();
    let eps = 1e-6;
    let shifted = |sign: f64| -> f64 {
        let v: Vec<f64> = u
            .iter()
            .zip(&direction)
            .map(|(u, d)| u + sign * eps * d)
            .collect();
        let f = layer.residual(&v, &pool).unwrap();
        f.iter().zip(&f_bar).map(|(f, w)| f * w).sum()
    };
    // About -8e-3 here; agreement to 1e-9 of the scale of the sums.
    let numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
    assert!(
        (analytic - numeric).abs() < 1e-7 * analytic.abs().max(1e-3),
        "analytic {analytic}, finite differences {numeric}"
    );

    let other: Vec<f64> = u.iter().map(|x| 1.5 - x).collect();
    let other_bar: Vec<f64> = f_bar.iter().map(|x| -2.0 * x).collect();
    let both = layer
        .residual_backward(
            &[u.clone(), other.clone()].concat(),
            &[f_bar.clone(), other_bar.clone()].concat(),
            &pool,
        )
        .unwrap();
    assert_eq!(both[..g], u_bar[..]);
    let alone = layer.residual_backward(&other, &other_bar, &pool).unwrap();
    assert_eq!(both[g..], alone[..]);

    let err = layer
        .residual_backward(&u, &f_bar[1..], &pool)
        .err()
        .unwrap();
    assert!(matches!(err, SolverError::ShapeMismatch { .. }), "{err}");
    let mut bad = f_bar.clone();
    bad[2] = f64::NAN;
    let err = layer.residual_backward(&u, &bad, &pool).err().unwrap();
    assert!(
        matches!(err, SolverError::NonFinite { count: 1, .. }),
        "{err}"
    );
}
