//! The model end to end on tiny scenarios: shapes per method, the hard
//! constraint's rows holding in the assembled solution, exact resume of the
//! warm-start state, predictions agreeing with the loss, and typed errors.

use super::model_common;
use crate::SolverError;
use crate::model::Model;
use crate::model::gradcheck::sample_ics;
use crate::model::loss::{BC, IC, PhysicsLoss};
use crate::model::setup;
use crate::trainable::{Batch, Trainable};

pub(crate) fn batch(scenario: &tessera_scenarios::Scenario, seed: u64) -> Batch {
    Batch {
        ics: sample_ics(scenario, 2, seed).unwrap(),
        targets: None,
        seed,
    }
}

#[test]
fn soft_outputs_one_channel_and_constrained_methods_n() {
    for (method, channels) in [("soft", 1), ("hard", 6), ("moe", 6)] {
        let s = model_common::diffusion_sorption(method, "");
        let mut model = Model::new(&s).unwrap();
        let b = batch(&s, 1);
        assert_eq!(
            model.backbone(&b.ics).unwrap().dims(),
            &[2, 8 * 16, channels]
        );
        let (u, stats) = model.solution(&b.ics, 1).unwrap();
        assert_eq!(u.dims(), &[2, 8 * 16]);
        let expected_solves = match method {
            "soft" => None,
            "hard" => Some(2),
            _ => Some(4),
        };
        assert_eq!(stats.map(|s| s.solves), expected_solves);
        let prediction = model.predict(&b.ics, 1).unwrap();
        assert_eq!(prediction.fields.len(), 2);
        assert!(prediction.fields.iter().all(|f| f.len() == 8 * 16));
    }
}

/// The constraint solve enforces the initial and boundary rows: with more basis
/// functions than rows (64 > 16 IC + 14 BC rows + 8 points per expert; the
/// head's hidden width 96 lets them be independent) and a negligible ridge, the IC and BC
/// losses of the assembled solution (which evaluate those rows on `u`,
/// independently of the solver) are ten times below those of the solver's
/// starting point `u = Σ_n B_n` (`ω = 1`). The rows do not vanish: the random
/// basis is smooth and close to rank-deficient on this tiny grid, and the PDE
/// rows compete with them (the exact case is Navier–Stokes' initial condition,
/// below).
#[test]
fn hard_and_moe_solutions_satisfy_the_constraint_rows() {
    let tight = "ridge = 1e-6\nrtol = 1e-8\natol = 1e-8\nmax_iters = 1000";
    for method in ["hard", "moe"] {
        let mut s = model_common::diffusion_sorption(method, tight);
        s.model.n_basis = 64;
        s.model.fc_dim = 96;
        s.constraint.points = 8;
        let mut model = Model::new(&s).unwrap();
        let b = batch(&s, 2);
        let start = model.backbone(&b.ics).unwrap().sum(2).unwrap();
        let start = start.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let grid = s.grid().unwrap();
        let pde = std::sync::Arc::new(setup::pde_of(&s).unwrap());
        let before = PhysicsLoss::new(pde, grid)
            .unwrap()
            .evaluate(&start, &b.ics, None)
            .unwrap();
        let after = model.loss(&b).unwrap();
        assert_eq!(after.failed_solves, 0, "{method}");
        assert!(
            after.ic < 0.1 * before.values[IC] && after.bc < 0.1 * before.values[BC],
            "{method}: ic {} -> {}, bc {} -> {}",
            before.values[IC],
            after.ic,
            before.values[BC],
            after.bc
        );
    }
}

/// Navier–Stokes builds the initial condition in: `u(0) = u0` exactly.
#[test]
fn navier_stokes_hard_solution_starts_at_the_initial_condition() {
    let s = model_common::navier_stokes("moe");
    let mut model = Model::new(&s).unwrap();
    let b = batch(&s, 3);
    let prediction = model.predict(&b.ics, 3).unwrap();
    for (field, ic) in prediction.fields.iter().zip(&b.ics) {
        let scale = ic.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (u, u0) in field[..ic.len()].iter().zip(ic) {
            assert!((u - u0).abs() <= 1e-12 * scale);
        }
    }
    assert!(model.loss(&b).unwrap().ic < 1e-12);
}

/// `predict` returns the fields the loss is computed from: the data loss
/// against any targets equals `‖u − u_true‖/‖u_true‖` of the predictions.
#[test]
fn predictions_match_the_loss_fields() {
    let s = model_common::diffusion_sorption("moe", "");
    let mut model = Model::new(&s).unwrap();
    let mut b = batch(&s, 4);
    let u = model.predict(&b.ics, b.seed).unwrap().fields.concat();
    let targets: Vec<Vec<f64>> = (0..2)
        .map(|i| {
            (0..128)
                .map(|p| 0.1 + 0.01 * ((p + 7 * i) as f64).sin())
                .collect()
        })
        .collect();
    let flat = targets.concat();
    let diff: f64 = u
        .iter()
        .zip(&flat)
        .map(|(a, t)| (a - t).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = flat.iter().map(|t| t * t).sum::<f64>().sqrt();
    b.targets = Some(targets);
    let loss = model.loss(&b).unwrap();
    assert!((loss.data - diff / norm).abs() <= 1e-12 * loss.data);
}

/// `training.pde_norm = "levels"` reaches the model's loss: its PDE part is
/// the batch mean of `Σ_l ‖F_l‖ / √L` over the predictions' per-level
/// residual norms, which an evaluation reports whatever the norm.
#[test]
fn the_scenarios_pde_norm_is_the_models() {
    let mut s = model_common::diffusion_sorption("moe", "");
    s.training.pde_norm = tessera_scenarios::config::PdeNorm::Levels;
    let mut model = Model::new(&s).unwrap();
    let b = batch(&s, 7);
    let fields = model.predict(&b.ics, b.seed).unwrap().fields;
    let pde = std::sync::Arc::new(setup::pde_of(&s).unwrap());
    let reported = PhysicsLoss::new(pde, s.grid().unwrap()).unwrap();
    let expected: f64 = fields
        .iter()
        .zip(&b.ics)
        .map(|(u, ic)| {
            let levels = reported.sample_losses(u, ic).unwrap().pde_levels;
            levels.iter().sum::<f64>() / (levels.len() as f64).sqrt()
        })
        .sum::<f64>()
        / fields.len() as f64;
    let pde = model.loss(&b).unwrap().pde;
    assert!(
        (pde - expected).abs() <= 1e-12 * expected,
        "{pde} vs {expected}"
    );
}

/// A model restored from another's warm-start state continues exactly as the
/// original does.
#[test]
fn warm_start_state_resumes_exactly() {
    let s = model_common::diffusion_sorption("moe", "init = \"warm\"");
    let mut first = Model::new(&s).unwrap();
    assert!(first.extra_state().is_empty());
    first.loss(&batch(&s, 5)).unwrap();
    let state = first.extra_state();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].1.len(), 6);
    let mut resumed = Model::new(&s).unwrap();
    resumed.restore_extra_state(&state).unwrap();
    let a = first.loss(&batch(&s, 6)).unwrap();
    let b = resumed.loss(&batch(&s, 6)).unwrap();
    assert_eq!(
        a.total.to_scalar::<f64>().unwrap(),
        b.total.to_scalar::<f64>().unwrap()
    );
    assert_eq!(a.lm_iterations_mean, b.lm_iterations_mean);
}

#[test]
fn bad_input_is_a_typed_error() {
    let s = model_common::diffusion_sorption("moe", "");
    let mut model = Model::new(&s).unwrap();
    let mut b = batch(&s, 1);
    b.ics[1].pop();
    assert!(matches!(
        model.loss(&b),
        Err(SolverError::ShapeMismatch { .. })
    ));
    let mut b = batch(&s, 1);
    b.ics[0][3] = f64::NAN;
    assert!(matches!(
        model.predict(&b.ics, 0),
        Err(SolverError::NonFinite { count: 1, .. })
    ));
    assert!(matches!(
        model.predict(&[], 0),
        Err(SolverError::ShapeMismatch { .. })
    ));
    let mut with_data = s.clone();
    with_data.training.loss.data = 1.0;
    assert!(matches!(
        Model::new(&with_data).unwrap().loss(&batch(&s, 1)),
        Err(SolverError::InvalidConfig {
            key: "training.loss.data",
            ..
        })
    ));
    assert!(
        model
            .restore_extra_state(&[("unknown".into(), vec![1.0])])
            .is_err()
    );
    let key = "constraint.warm_start".to_owned();
    assert!(matches!(
        model.restore_extra_state(&[(key.clone(), vec![1.0; 5])]),
        Err(SolverError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        model.restore_extra_state(&[(key, vec![f64::INFINITY; 6])]),
        Err(SolverError::NonFinite { .. })
    ));
    // A zero initial concentration cannot enter diffusion–sorption's IC rows.
    let mut b = batch(&s, 1);
    b.ics[0] = vec![0.0; 16];
    assert!(matches!(model.loss(&b), Err(SolverError::Experts(_))));
    let mut bad = s.clone();
    bad.model.modes = vec![5, 3];
    assert!(matches!(Model::new(&bad), Err(SolverError::Scenario(_))));
}

/// An f32 backbone feeds the f64 constraint and losses, and every variable
/// (stored in f32) receives a finite gradient through the conversion.
#[test]
fn f32_backbone_trains_through_the_f64_constraint() {
    let mut s = model_common::diffusion_sorption("moe", "");
    s.model.dtype = tessera_scenarios::config::Dtype::F32;
    let mut model = Model::new(&s).unwrap();
    let loss = model.loss(&batch(&s, 7)).unwrap();
    let grads = loss.total.backward().unwrap();
    let vars = model.vars().all_vars();
    assert!(!vars.is_empty());
    for var in vars {
        assert_eq!(var.dtype(), candle_core::DType::F32);
        let g = grads
            .get(var.as_tensor())
            .expect("every variable has a gradient");
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|x| x.is_finite()));
    }
}

/// With `training.horizon` the training model's backbone is the whole-grid
/// model's cut to the trained levels (the same function, so evaluation on the
/// whole grid does not change the trained window's basis), and its solution
/// covers the window only.
#[test]
fn a_training_window_cuts_the_whole_grid_backbone() {
    for method in ["soft", "moe"] {
        let mut s = model_common::diffusion_sorption(method, "");
        // Levels 500/7 apart: t ≤ 300 keeps five of eight.
        s.set("training.horizon=300").unwrap();
        let (whole, mut window) = (Model::new(&s).unwrap(), Model::for_training(&s).unwrap());
        let b = batch(&s, 3);
        let full = whole.backbone(&b.ics).unwrap();
        let cut = window.backbone(&b.ics).unwrap();
        assert_eq!(cut.dims()[1], 5 * 16);
        let expected = full.narrow(1, 0, 5 * 16).unwrap();
        let diff = (cut - expected).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0, "{method}");
        let (u, _) = window.solution(&b.ics, 1).unwrap();
        assert_eq!(u.dims(), &[2, 5 * 16]);
    }
}

/// A training step's phases: each part of the step adds its own time (the
/// soft method has no solves), on both backward paths (the graph's, and the
/// per-sample one of `parallel.reproducible`), and together they stay within
/// the step's wall time, so no part is counted twice.
#[test]
fn a_step_times_each_of_its_phases_once() {
    use crate::phases::Phase;
    use crate::train::{Adam, AdamConfig, named_vars, update};
    use std::time::Instant;
    for (method, reproducible) in [
        ("soft", false),
        ("hard", false),
        ("moe", false),
        ("moe", true),
    ] {
        let mut s = model_common::diffusion_sorption(method, "");
        s.parallel.reproducible = reproducible;
        let mut model = Model::new(&s).unwrap();
        let vars = named_vars(&model).unwrap();
        let mut adam = Adam::new(AdamConfig::default());
        let b = batch(&s, 3);
        model.phases().unwrap().take();
        let started = Instant::now();
        update(&mut model, &b, &vars, &mut adam, 1e-3, 1.0).unwrap();
        let wall = started.elapsed().as_secs_f64();
        let times = model.phases().unwrap().take();
        let label = format!("{method}, reproducible {reproducible}: {times:?}");
        for phase in Phase::ALL {
            let solved = matches!(phase, Phase::Solves | Phase::ConstraintBackward);
            if method == "soft" && solved {
                assert_eq!(times.get(phase), 0.0, "{label}");
            } else {
                assert!(times.get(phase) > 0.0, "{:?}: {label}", phase);
            }
        }
        assert!(times.total() <= wall, "{label}, wall {wall}");
    }
}

/// A step's graph runs the backbone and the constraint layer as one node
/// (`model/constrained_pass.rs`), whose backward pass hands the layer's basis
/// gradient straight to the backbone's; the per-sample path of
/// `parallel.reproducible` runs them as separate steps, the basis a tensor
/// between them. Their parameter gradients agree: on the whole grid, on a
/// training window (the backbone's grid longer than the solution's, so the
/// basis is cut and its gradient padded), and for a float32 backbone.
#[test]
fn the_step_graphs_gradient_is_the_per_sample_paths() {
    use crate::train::named_vars;
    for (setting, tolerance) in [
        (None, 1e-9),
        (Some("training.horizon=300"), 1e-9),
        (Some("model.dtype=\"f32\""), 1e-3),
    ] {
        let mut s = model_common::diffusion_sorption("moe", "");
        if let Some(setting) = setting {
            s.set(setting).unwrap();
        }
        let b = batch(&s, 3);
        let mut graph = Model::for_training(&s).unwrap();
        let step = graph.loss(&b).unwrap();
        let store = step.total.backward().unwrap();
        let from_graph: Vec<f64> = named_vars(&graph)
            .unwrap()
            .values()
            .flat_map(|var| {
                let g = store
                    .get(var.as_tensor())
                    .expect("every variable has a gradient");
                let g = g.flatten_all().unwrap().to_dtype(candle_core::DType::F64);
                g.unwrap().to_vec1::<f64>().unwrap()
            })
            .collect();
        s.parallel.reproducible = true;
        let mut per_sample = Model::for_training(&s).unwrap();
        let gradients = per_sample
            .loss(&b)
            .unwrap()
            .gradients
            .expect("per-sample gradients");
        let mut summed = vec![0.0; from_graph.len()];
        for sample in &gradients.samples {
            summed.iter_mut().zip(sample).for_each(|(s, g)| *s += g);
        }
        let scale = summed.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let worst = from_graph
            .iter()
            .zip(&summed)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{setting:?}: worst {:.2e} of the largest entry {scale:.2e}",
            worst / scale
        );
        assert!(
            scale > 0.0 && worst <= tolerance * scale,
            "{setting:?}: {worst:e} of {scale:e}"
        );
    }
}
