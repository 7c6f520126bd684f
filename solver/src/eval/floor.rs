//! The physics floor: how close physics-only training could come to the ground
//! truth on a scenario's discretisation, whatever the backbone.
//!
//! Training minimises the *discrete* training loss (PDE residual of the
//! scenario's stencils, IC and BC rows, with the scenario's weights) of the
//! predicted field. The ground truth comes from a finer solver and is not a
//! minimiser of that loss, so even a perfect model and optimiser would end
//! some distance from it. This module measures that distance: for each test
//! trajectory it minimises the training loss of one sample over the whole
//! field (every grid value a free unknown), starting from the truth, and
//! reports the relative L2 distance of the minimiser from the truth.
//!
//! Read it as the error a model whose output could be any field would reach
//! near the truth: a test error close to it means the discretisation, not
//! the model, limits the accuracy; a test error far above it means model,
//! optimiser or data have room left. The minimisation runs a fixed budget of
//! L-BFGS iterations and the distance still grows slowly when the budget
//! ends, so the report gives the iterations, the stop reason and the final
//! gradient norm with it.
//!
//! The loss parts are norms (not squares), with a kink where a part is zero:
//! the initial-condition part is zero at the truth itself. The minimiser takes
//! each part as `√(v² + ε²)` with `ε` = [`SMOOTHING`], smooth everywhere;
//! the reported losses are the unsmoothed ones.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tessera_scenarios::Scenario;

use super::lbfgs::{LbfgsMinimum, LbfgsOptions, LbfgsStop, minimize};
use super::physics::{PhysicsLosses, losses_of};
use super::{mean_std, relative_l2};
use crate::SolverError;
use crate::data::Samples;
use crate::model::loss::{LossParts, N_PARTS, PhysicsLoss};
use crate::model::setup;

/// `ε` of the smoothed loss parts `√(v² + ε²)`: parts far above it are
/// unchanged, one at zero is quadratic instead of a kink.
pub const SMOOTHING: f64 = 1e-4;

/// What [`physics_floor`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorOptions {
    /// Test trajectories, the first ones of the test split.
    pub samples: usize,
    /// L-BFGS iterations per trajectory, at most.
    pub iterations: usize,
}

impl Default for FloorOptions {
    fn default() -> Self {
        Self {
            samples: 8,
            iterations: 5000,
        }
    }
}

/// The physics floor of a scenario's test trajectories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhysicsFloor {
    /// The loss weights `[pde, ic, bc, data]` minimised (the scenario's).
    pub weights: [f64; N_PARTS],
    /// `‖u_floor − u_true‖₂ / ‖u_true‖₂` per trajectory.
    pub rel_l2: Vec<f64>,
    /// Their mean and population standard deviation.
    pub rel_l2_mean: f64,
    pub rel_l2_std: f64,
    /// The weighted training loss at the floor and at the truth, mean over
    /// the trajectories.
    pub loss: f64,
    pub loss_truth: f64,
    /// The unweighted parts at the floor and at the truth.
    pub floor: PhysicsLosses,
    pub truth: PhysicsLosses,
    /// L-BFGS iterations, stop reason and final gradient norm per trajectory.
    pub iterations: Vec<usize>,
    pub stops: Vec<LbfgsStop>,
    pub gradient_norms: Vec<f64>,
}

/// The weighted loss of one sample, each part smoothed, and its gradient.
fn smoothed(parts: &LossParts, weights: &[f64; N_PARTS]) -> (f64, Vec<f64>) {
    let mut scaled = [0.0; N_PARTS];
    let mut value = 0.0;
    for ((s, &v), &w) in scaled.iter_mut().zip(&parts.values).zip(weights) {
        let norm = v.hypot(SMOOTHING);
        value += w * norm;
        *s = w * v / norm;
    }
    (value, parts.combine(&scaled))
}

/// The weighted, unsmoothed loss of `parts`.
fn weighted(parts: &LossParts, weights: &[f64; N_PARTS]) -> f64 {
    parts.values.iter().zip(weights).map(|(v, w)| v * w).sum()
}

/// One trajectory's floor: the minimiser of its smoothed training loss from
/// `start` (the truth itself, or anything else for a restart). The data loss,
/// when weighted, compares with `truth`.
fn sample_floor(
    loss: &PhysicsLoss,
    weights: &[f64; N_PARTS],
    (truth, ic): (&[f64], &[f64]),
    start: Vec<f64>,
    lbfgs: &LbfgsOptions,
) -> Result<LbfgsMinimum, SolverError> {
    let targets = (weights[3] > 0.0).then(|| vec![truth.to_vec()]);
    let ic = [ic.to_vec()];
    let f = |u: &[f64]| {
        let parts = loss.evaluate(u, &ic, targets.as_deref())?;
        Ok::<_, SolverError>(smoothed(&parts, weights))
    };
    let rms = (truth.iter().map(|x| x * x).sum::<f64>() / truth.len() as f64).sqrt();
    minimize(f, start, 1e-3 * rms, lbfgs)
}

/// The physics floor of the first `options.samples` trajectories of `test`
/// (on the scenario's grid) under the scenario's training loss. With a
/// training horizon, on the trained window only, as training sees it.
///
/// Errors: more samples than the test split holds (or none), no iterations,
/// a PDE the scenario cannot build, non-finite losses.
pub fn physics_floor(
    scenario: &Scenario,
    test: &Samples,
    options: &FloorOptions,
) -> Result<PhysicsFloor, SolverError> {
    if options.samples == 0 || options.samples > test.len() {
        return Err(SolverError::InvalidConfig {
            key: "floor samples",
            value: options.samples.to_string(),
            reason: format!("need 1 to {} (the test trajectories)", test.len()),
        });
    }
    if options.iterations == 0 {
        // No iteration would report the truth itself as its floor.
        return Err(SolverError::InvalidConfig {
            key: "floor iterations",
            value: "0".into(),
            reason: "need at least one L-BFGS iteration".into(),
        });
    }
    let window = scenario.training_scenario();
    let test = test.first_levels(window.training_levels())?;
    let loss = PhysicsLoss::new(Arc::new(setup::pde_of(&window)?), window.grid()?)?
        .with_pde_norm(window.training.pde_norm);
    let w = &window.training.loss;
    let weights = [w.pde, w.ic, w.bc, w.data];
    let indices: Vec<usize> = (0..options.samples).collect();
    let ics = test.initial_conditions(&indices);
    let truths = &test.trajectories()?[..options.samples];
    let lbfgs = LbfgsOptions {
        max_iterations: options.iterations,
        ..LbfgsOptions::default()
    };
    let minima = truths
        .par_iter()
        .zip(&ics)
        .map(|(truth, ic)| {
            let targets = (weights[3] > 0.0).then(|| vec![truth.clone()]);
            let at = |u: &[f64]| -> Result<f64, SolverError> {
                let parts = loss.evaluate(u, std::slice::from_ref(ic), targets.as_deref())?;
                Ok(weighted(&parts, &weights))
            };
            let min = sample_floor(&loss, &weights, (truth, ic), truth.clone(), &lbfgs)?;
            Ok((at(&min.x)?, at(truth)?, min))
        })
        .collect::<Result<Vec<_>, SolverError>>()?;
    let n = minima.len() as f64;
    let fields: Vec<Vec<f64>> = minima.iter().map(|(_, _, m)| m.x.clone()).collect();
    let rel_l2 = fields
        .iter()
        .zip(truths)
        .map(|(u, t)| relative_l2(u, t))
        .collect::<Result<Vec<_>, _>>()?;
    let (rel_l2_mean, rel_l2_std) = mean_std(&rel_l2);
    Ok(PhysicsFloor {
        weights,
        rel_l2,
        rel_l2_mean,
        rel_l2_std,
        loss: minima.iter().map(|(l, _, _)| l / n).sum(),
        loss_truth: minima.iter().map(|(_, l, _)| l / n).sum(),
        floor: losses_of(&loss, &fields, &ics)?,
        truth: losses_of(&loss, truths, &ics)?,
        iterations: minima.iter().map(|(_, _, m)| m.iterations).collect(),
        stops: minima.iter().map(|(_, _, m)| m.stop).collect(),
        gradient_norms: minima.iter().map(|(_, _, m)| m.gradient_norm).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NT: usize = 6;
    const NX: usize = 8;
    const WEIGHTS: [f64; N_PARTS] = [1.0, 1.0, 0.5, 0.0];

    /// Diffusion–sorption with the reference's cell-centre boundary rows on an
    /// `NT × NX` grid, the BC loss at half weight.
    fn scenario() -> Scenario {
        let text = format!(
            "name = \"floor\"\n[pde]\nkind = \"diffusion-sorption\"\nboundary = \"cell-centres\"\n\
             [grid]\nnt = {NT}\nnx = {NX}\nt_max = 500.0\n\
             [data]\ntrain_samples = 2\ntest_samples = 2\n\
             [model]\nwidths = [4, 4]\nmodes = [2, 2]\nfc_dim = 4\nn_basis = 3\n\
             [constraint]\nmethod = \"soft\"\n\
             [training]\nbatch_size = 2\nvalidate_samples = 1\n\
             loss = {{ pde = 1.0, ic = 1.0, bc = 0.5, data = 0.0 }}\n[eval]\nplots = 1\n"
        );
        Scenario::from_str(&text, "<test>").unwrap()
    }

    /// Two smooth positive "truths": the floor needs no particular solver's
    /// output, only fields the loss is defined on.
    fn test_samples() -> Samples {
        let field = |b: usize| -> Vec<f64> {
            (0..NT * NX)
                .map(|p| 0.3 + 0.1 * ((p + 5 * b) as f64 * 0.7).sin() + 0.02 * (p / NX) as f64)
                .collect()
        };
        Samples::new(vec![NT, NX], vec![field(0), field(1)]).unwrap()
    }

    /// The floor is a stationary point of the smoothed training loss, checked
    /// with central differences of the loss *values* (not the gradient the
    /// minimiser used) along fixed directions: slopes that are large at the
    /// truth vanish there. Restarting from the floor stays there (a
    /// minimiser's fixed point), and the report's loss is below the truth's.
    #[test]
    fn the_floor_is_a_stationary_point_below_the_truths_loss() {
        let (scenario, test) = (scenario(), test_samples());
        let loss = PhysicsLoss::new(
            Arc::new(setup::pde_of(&scenario).unwrap()),
            scenario.grid().unwrap(),
        )
        .unwrap();
        let (truth, ic) = (&test.trajectories().unwrap()[0], test.initial_condition(0));
        let lbfgs = LbfgsOptions {
            max_iterations: 20_000,
            ..LbfgsOptions::default()
        };
        let min = sample_floor(&loss, &WEIGHTS, (truth, ic), truth.clone(), &lbfgs).unwrap();
        assert!(
            matches!(min.stop, LbfgsStop::Converged | LbfgsStop::Stalled),
            "{min:?}"
        );
        let objective = |u: &[f64]| {
            let parts = loss.evaluate(u, &[ic.to_vec()], None).unwrap();
            smoothed(&parts, &WEIGHTS).0
        };
        let slope = |u: &[f64], k: usize| {
            let h = 1e-6;
            let along = |s: f64| -> Vec<f64> {
                u.iter()
                    .enumerate()
                    .map(|(p, x)| x + s * ((p * (k + 3)) as f64 * 1.3).cos())
                    .collect()
            };
            (objective(&along(h)) - objective(&along(-h))) / (2.0 * h)
        };
        let largest = |u: &[f64]| (0..4).map(|k| slope(u, k).abs()).fold(0.0, f64::max);
        let (at_truth, at_floor) = (largest(truth), largest(&min.x));
        assert!(at_truth > 1e-2, "{at_truth}");
        assert!(at_floor < 1e-4 * at_truth, "{at_floor} (truth {at_truth})");
        let again = sample_floor(&loss, &WEIGHTS, (truth, ic), min.x.clone(), &lbfgs).unwrap();
        let moved = relative_l2(&again.x, &min.x).unwrap();
        assert!(moved < 1e-6, "{moved}");

        let options = FloorOptions {
            samples: 2,
            iterations: 20_000,
        };
        let floor = physics_floor(&scenario, &test, &options).unwrap();
        assert_eq!(floor.weights, WEIGHTS);
        assert!((floor.rel_l2[0] - relative_l2(&min.x, truth).unwrap()).abs() < 1e-12);
        assert!(floor.rel_l2.iter().all(|r| *r > 1e-3), "{floor:?}");
        assert!(floor.loss < floor.loss_truth, "{floor:?}");
        let parts = |l: &PhysicsLosses| l.pde + l.ic + 0.5 * l.bc;
        assert!(
            (parts(&floor.floor) - floor.loss).abs() < 1e-12,
            "{floor:?}"
        );
        assert!(
            (parts(&floor.truth) - floor.loss_truth).abs() < 1e-12,
            "{floor:?}"
        );
    }

    /// More samples than the test split holds, or no iterations, is a typed
    /// error.
    #[test]
    fn too_many_samples_is_an_error() {
        let options = FloorOptions {
            samples: 3,
            iterations: 10,
        };
        let err = physics_floor(&scenario(), &test_samples(), &options).unwrap_err();
        assert!(err.to_string().contains("floor samples"), "{err}");
        let none = FloorOptions {
            samples: 1,
            iterations: 0,
        };
        let err = physics_floor(&scenario(), &test_samples(), &none).unwrap_err();
        assert!(err.to_string().contains("floor iterations"), "{err}");
    }
}
