//! A trained model evaluated at other spatial resolutions
//! ([`Model::at_resolution`], [`evaluate_resolutions`]): the same predictions
//! at the model's own resolution, a backbone that refines smoothly, and typed
//! errors for resolutions that cannot be evaluated.

mod model_common;

use std::f64::consts::TAU;

use tessera_scenarios::{Dataset, Scenario};
use tessera_solver::{Model, Samples, SolverError, Trainable, evaluate, evaluate_resolutions};

/// A smooth periodic initial condition on an `n × n` grid (frequencies 1
/// and 2, resolved on any grid of 8 or more points).
fn smooth_ic(n: usize) -> Vec<f64> {
    (0..n * n)
        .map(|p| {
            let (x, y) = ((p / n) as f64 / n as f64, (p % n) as f64 / n as f64);
            (TAU * x).sin() * (TAU * y).cos() + 0.5 * (TAU * (2.0 * y - x)).cos()
        })
        .collect()
}

/// The tiny Navier–Stokes model with its variables moved off their seeded
/// values, so that a rebuilt model matches only if it copied them.
fn trained_model() -> Model {
    let model = Model::new(&model_common::navier_stokes("moe")).unwrap();
    for var in model.vars().all_vars() {
        let shifted = ((var.as_tensor() * 1.05).unwrap() + 0.01).unwrap();
        var.set(&shifted).unwrap();
    }
    model
}

#[test]
fn the_own_resolution_predicts_bit_for_bit_the_same() {
    let model = trained_model();
    let rebuilt = model.at_resolution(8).unwrap();
    let ics = vec![smooth_ic(8), smooth_ic(8).iter().map(|v| -v).collect()];
    let (a, b) = (
        model.infer(&ics, 7).unwrap(),
        rebuilt.infer(&ics, 7).unwrap(),
    );
    assert_eq!(a.fields, b.fields);
    assert_eq!(a.statuses, b.statuses);
    // A model rebuilt from the seed alone (without the copied variables)
    // differs, so the equality above is the variables' doing.
    let fresh = Model::new(rebuilt.scenario()).unwrap();
    assert_ne!(fresh.infer(&ics, 7).unwrap().fields, a.fields);
}

/// A finer grid predicts in chunks of no more grid points than a training
/// batch (at least one sample), and the chunking leaves every sample's
/// prediction as it is.
#[test]
fn a_finer_grid_predicts_in_smaller_chunks() {
    let model = trained_model();
    let batch = model.scenario().training.batch_size;
    assert!(batch >= 2, "the test needs a batch to cut");
    assert_eq!(
        model
            .at_resolution(8)
            .unwrap()
            .scenario()
            .training
            .batch_size,
        batch
    );
    let finer = model.at_resolution(16).unwrap();
    assert_eq!(finer.scenario().training.batch_size, (batch / 4).max(1));
    let ics = vec![
        smooth_ic(16),
        smooth_ic(16).iter().map(|v| 0.5 * v).collect(),
    ];
    let together = finer.infer(&ics, 3).unwrap().fields;
    let one_by_one: Vec<Vec<f64>> = (ics.iter())
        .flat_map(|ic| finer.infer(std::slice::from_ref(ic), 3).unwrap().fields)
        .collect();
    assert_eq!(together, one_by_one);
}

#[test]
fn a_finer_grid_refines_the_backbone_smoothly() {
    // The spectral layers interpolate exactly (see the backbone's tests); the
    // activations and the coordinate features (normalised by the last point,
    // `i/(n − 1)`) do not, so the basis at the coarse points of a finer grid
    // moves by a little, and by less the finer the grids are.
    let model = trained_model();
    let at = |n: usize| {
        let m = model.at_resolution(n).unwrap();
        let out = m.backbone(&[smooth_ic(n)]).unwrap();
        out.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    };
    let basis = model.scenario().model.n_basis;
    let nt = model.scenario().grid.nt;
    // The basis of grid `n` at the points of grid `coarse`.
    let restricted = |values: &[f64], n: usize, coarse: usize| -> Vec<f64> {
        let k = n / coarse;
        let mut out = Vec::new();
        for t in 0..nt {
            for i in 0..coarse {
                for j in 0..coarse {
                    let p = (t * n + k * i) * n + k * j;
                    out.extend_from_slice(&values[p * basis..(p + 1) * basis]);
                }
            }
        }
        out
    };
    let rel = |a: &[f64], b: &[f64]| {
        let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        (d / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
    };
    let (b8, b16, b32) = (at(8), at(16), at(32));
    let coarse = rel(&restricted(&b16, 16, 8), &b8);
    let finer = rel(&restricted(&b32, 32, 8), &restricted(&b16, 16, 8));
    println!("basis change on refinement: 8 → 16 {coarse:.3e}, 16 → 32 {finer:.3e}");
    assert!(coarse > 0.0 && coarse < 0.05, "{coarse}");
    // First order in the spacing: about half the change per halving.
    assert!(finer < 0.7 * coarse, "{finer} vs {coarse}");
}

/// A test split of `scenario` stored at `n × n` as a dataset (float32, as
/// files hold it): the trajectories of `samples` on its time levels and
/// periodic unit square.
fn stored_split(scenario: &Scenario, n: usize, samples: Vec<Vec<f32>>) -> Dataset {
    let t = scenario.grid().unwrap().axis(0).coords().to_vec();
    let axis = (0..n).map(|i| i as f64 / n as f64).collect::<Vec<_>>();
    Dataset::new(t, axis.clone(), Some(axis), String::new(), samples).unwrap()
}

#[test]
fn the_finer_evaluation_restricts_the_stored_data() {
    // Three test trajectories stored at 16²: the evaluation at 16 compares
    // the 16² model's predictions with them, a sample at a time (the 16²
    // grid predicts one sample per chunk), the one at 8 (the model's grid,
    // reused) the 8² model's with every other point of them.
    let model = trained_model();
    let mut scenario = model.scenario().clone();
    scenario.eval.resolutions = vec![8, 16];
    let nt = scenario.grid.nt;
    let later = |s: usize, t: usize, i: usize, j: usize| {
        ((t * 31 + i * 7 + j * 3 + 5 * s) as f64 * 0.1).sin()
    };
    // Sample `s` on the `n × n` points every `stride`-th of the stored 16²,
    // as the f32 values stored.
    let truth_at = |s: usize, n: usize, stride: usize| -> Vec<f32> {
        let scale = 1.0 + 0.5 * s as f64;
        let mut v: Vec<f32> = smooth_ic(n).iter().map(|x| (scale * x) as f32).collect();
        for t in 1..nt {
            for i in 0..n {
                for j in 0..n {
                    v.push(later(s, t, stride * i, stride * j) as f32);
                }
            }
        }
        v
    };
    let stored = stored_split(&scenario, 16, (0..3).map(|s| truth_at(s, 16, 1)).collect());
    let test = Samples::from_dataset(&stored, &scenario.grid().unwrap(), 3).unwrap();
    let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    assert_eq!(test.trajectories().unwrap()[2], widen(truth_at(2, 8, 2)));
    let seed = tessera_solver::eval_seed(scenario.seed);
    let mut own = trained_model();
    let on_grid = evaluate(&mut own, &test, 3, 2, seed).unwrap();
    let mut reports = Vec::new();
    let rows = evaluate_resolutions(&model, &scenario, &stored, &on_grid, &mut |p| {
        reports.push(p.clone())
    })
    .unwrap();
    assert_eq!(rows.len(), 2);
    // Progress is told after each sample of the 16² grid, and not at all for
    // the reused 8² evaluation; the last report adds up to the row.
    let told: Vec<_> = reports
        .iter()
        .map(|p| (p.grid.clone(), p.done, p.total))
        .collect();
    assert_eq!(told, [1, 2, 3].map(|done| (vec![16, 16], done, 3)).to_vec());
    let last = reports.last().unwrap();
    assert_eq!(last.rel_l2_mean, rows[1].mean);
    assert_eq!(last.failed_solves, rows[1].failed_solves);
    assert_eq!((rows[0].resolution, rows[1].resolution), (8, 16));
    // Each sample predicted alone at `n` and compared with its truth there.
    let expected = |n: usize, stride: usize| -> Vec<f64> {
        let m = model.at_resolution(n).unwrap();
        (0..3)
            .map(|s| {
                let truth = widen(truth_at(s, n, stride));
                let ic = truth[..n * n].to_vec();
                let prediction = &m.infer(&[ic], seed).unwrap().fields[0];
                let d: f64 = prediction
                    .iter()
                    .zip(&truth)
                    .map(|(p, t)| (p - t).powi(2))
                    .sum();
                (d / truth.iter().map(|t| t * t).sum::<f64>()).sqrt()
            })
            .collect()
    };
    assert_eq!(rows[0].rel_l2, on_grid.rel_l2);
    assert_eq!(rows[0].rel_l2, expected(8, 2));
    assert_eq!(rows[1].rel_l2, expected(16, 1));
    assert_ne!(rows[0].rel_l2, rows[1].rel_l2);
    let mean = rows[1].rel_l2.iter().sum::<f64>() / 3.0;
    assert!(
        (rows[1].mean - mean).abs() < 1e-15 * mean,
        "{}",
        rows[1].mean
    );
    assert!(rows[1].std > 0.0);
}

#[test]
fn resolutions_that_cannot_be_evaluated_are_typed_errors() {
    let model = trained_model();
    // Modes [1, 2, 2] need 4 points on x; 2 points per expert tile of 1×1.
    for resolution in [0, 2] {
        let err = model.at_resolution(resolution).err().expect("rejected");
        assert!(
            matches!(err, SolverError::Resolution { resolution: r, .. } if r == resolution),
            "{resolution}: {err}"
        );
    }
    // Stored data at 16² does not restrict to 12².
    let mut scenario = model.scenario().clone();
    scenario.eval.resolutions = vec![12];
    let stored = stored_split(&scenario, 16, vec![vec![1.0; 4 * 256]]);
    let test = Samples::from_dataset(&stored, &scenario.grid().unwrap(), 1).unwrap();
    let on_grid = evaluate(&mut trained_model(), &test, 1, 1, 0).unwrap();
    let err = evaluate_resolutions(&model, &scenario, &stored, &on_grid, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, SolverError::Resolution { resolution: 12, .. }),
        "{err}"
    );
    // A grid that is not periodic is not refined.
    let ds = Model::new(&model_common::diffusion_sorption("moe", "")).unwrap();
    let err = ds.at_resolution(32).err().expect("rejected");
    assert!(matches!(err, SolverError::Resolution { .. }), "{err}");
}
