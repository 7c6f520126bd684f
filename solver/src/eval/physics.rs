//! The training's physics losses on the evaluated test samples, of the
//! predictions and of the ground truth side by side.
//!
//! Physics-only training minimises the PDE residual of the *discrete* operator
//! the scenario's stencils define, on the model's grid. The ground truth is
//! solved on a finer grid by another scheme, so it leaves a residual of its own
//! on that operator; the per-level norms show where it sits (for
//! diffusion–sorption, in the first time levels, where the boundary value
//! switches on against the initial condition faster than one time step
//! resolves). A prediction whose PDE loss is below the truth's has not
//! necessarily reached the discretisation's limit: minimisers of the loss can
//! lie close to the truth with a lower loss still. [`super::physics_floor`]
//! measures how close.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tessera_scenarios::Scenario;

use crate::SolverError;
use crate::data::Samples;
use crate::model::loss::PhysicsLoss;
use crate::model::setup;

/// The unweighted physics losses of a set of trajectories, each as training
/// defines it for one sample, averaged over the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicsLosses {
    /// PDE loss `‖F(u)‖₂` over the whole grid.
    pub pde: f64,
    /// Per time level, the root mean square over the samples of that level's
    /// residual norm (the squares add up to the mean of `‖F(u)‖₂²`).
    pub pde_levels: Vec<f64>,
    /// Initial-condition loss `‖u(0) − u₀‖ / ‖u₀‖`.
    pub ic: f64,
    /// Boundary-row norm.
    pub bc: f64,
}

/// [`PhysicsLosses`] of the predictions and of the ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicsCheck {
    pub prediction: PhysicsLosses,
    pub truth: PhysicsLosses,
}

/// The physics losses of `predictions` (the first samples of `test`, on
/// `scenario`'s whole grid) and of their ground truth.
///
/// Errors: a PDE the scenario cannot build, fields of the wrong size,
/// non-finite residuals.
pub fn physics_check(
    scenario: &Scenario,
    test: &Samples,
    predictions: &[Vec<f64>],
) -> Result<PhysicsCheck, SolverError> {
    let truths =
        test.trajectories()?
            .get(..predictions.len())
            .ok_or(SolverError::ShapeMismatch {
                what: "test trajectories for the predictions",
                expected: vec![predictions.len()],
                got: vec![test.len()],
            })?;
    let indices: Vec<usize> = (0..predictions.len()).collect();
    let ics = test.initial_conditions(&indices);
    let loss = PhysicsLoss::new(Arc::new(setup::pde_of(scenario)?), scenario.grid()?)?;
    Ok(PhysicsCheck {
        prediction: losses_of(&loss, predictions, &ics)?,
        truth: losses_of(&loss, truths, &ics)?,
    })
}

/// [`PhysicsLosses`] of `fields`, one initial condition each.
pub(super) fn losses_of(
    loss: &PhysicsLoss,
    fields: &[Vec<f64>],
    ics: &[Vec<f64>],
) -> Result<PhysicsLosses, SolverError> {
    let per_sample = fields
        .par_iter()
        .zip(ics)
        .map(|(u, ic)| loss.sample_losses(u, ic))
        .collect::<Result<Vec<_>, SolverError>>()?;
    let n = per_sample.len().max(1) as f64;
    let (mut pde, mut ic, mut bc) = (0.0, 0.0, 0.0);
    let mut squares = Vec::new();
    for sample in &per_sample {
        pde += sample.pde_levels.iter().map(|l| l * l).sum::<f64>().sqrt() / n;
        ic += sample.ic / n;
        bc += sample.bc / n;
        squares.resize(sample.pde_levels.len(), 0.0);
        squares
            .iter_mut()
            .zip(&sample.pde_levels)
            .for_each(|(s, l)| *s += l * l / n);
    }
    Ok(PhysicsLosses {
        pde,
        pde_levels: squares.into_iter().map(f64::sqrt).collect(),
        ic,
        bc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NT: usize = 6;
    const NX: usize = 8;
    const T_MAX: f64 = 500.0;

    /// Diffusion–sorption with the face boundary rows on an `NT × NX` grid.
    fn scenario() -> Scenario {
        let text = format!(
            "name = \"physics\"\n[pde]\nkind = \"diffusion-sorption\"\n\
             [grid]\nnt = {NT}\nnx = {NX}\nt_max = {T_MAX}\n\
             [data]\ntrain_samples = 2\ntest_samples = 2\n\
             [model]\nwidths = [4, 4]\nmodes = [2, 2]\nfc_dim = 4\nn_basis = 3\n\
             [constraint]\nmethod = \"soft\"\n[training]\nbatch_size = 2\nvalidate_samples = 1\n[eval]\nplots = 1\n"
        );
        Scenario::from_str(&text, "<test>").unwrap()
    }

    /// `u(t, x) = a + b·t`, constant in `x`.
    fn linear_in_time(a: f64, b: f64) -> Vec<f64> {
        (0..NT * NX)
            .map(|p| a + b * (p / NX) as f64 * T_MAX / (NT - 1) as f64)
            .collect()
    }

    /// The losses of fields linear in time, from their closed forms: every
    /// stencil is exact on them (first differences of a line, second differences
    /// zero), so the residual is `F = u_t = b` at every point whatever `R(u)`,
    /// the face rows read `u − 1` (left, `u_x = 0`) and `u` (right) on the
    /// levels `t > 0`, and the initial-condition loss is `|a − a₀| / a₀`.
    #[test]
    fn losses_of_fields_linear_in_time_match_their_closed_forms() {
        let truth = [(0.5, 1e-3), (0.3, -2e-4)];
        let prediction = [(0.55, 4e-4), (0.3, 0.0)];
        let test = Samples::new(
            vec![NT, NX],
            truth.iter().map(|&(a, b)| linear_in_time(a, b)).collect(),
        )
        .unwrap();
        let fields: Vec<Vec<f64>> = prediction
            .iter()
            .map(|&(a, b)| linear_in_time(a, b))
            .collect();
        let check = physics_check(&scenario(), &test, &fields).unwrap();
        let dt = T_MAX / (NT - 1) as f64;
        let expected = |lines: &[(f64, f64)]| {
            let n = lines.len() as f64;
            let pde = lines
                .iter()
                .map(|&(_, b)| b.abs() * ((NT * NX) as f64).sqrt())
                .sum::<f64>()
                / n;
            let level = (lines.iter().map(|&(_, b)| b * b * NX as f64).sum::<f64>() / n).sqrt();
            let ic = lines
                .iter()
                .zip(&truth)
                .map(|(&(a, _), &(a0, _))| (a - a0).abs() / a0)
                .sum::<f64>()
                / n;
            let bc = lines
                .iter()
                .map(|&(a, b)| {
                    (1..NT)
                        .map(|i| {
                            let u = a + b * i as f64 * dt;
                            (u - 1.0).powi(2) + u * u
                        })
                        .sum::<f64>()
                        .sqrt()
                })
                .sum::<f64>()
                / n;
            (pde, level, ic, bc)
        };
        for (got, lines) in [(&check.truth, &truth), (&check.prediction, &prediction)] {
            let (pde, level, ic, bc) = expected(lines);
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs().max(1e-3);
            assert!(close(got.pde, pde), "pde {} vs {pde}", got.pde);
            assert!(close(got.ic, ic), "ic {} vs {ic}", got.ic);
            assert!(close(got.bc, bc), "bc {} vs {bc}", got.bc);
            assert_eq!(got.pde_levels.len(), NT);
            for l in &got.pde_levels {
                assert!(close(*l, level), "level {l} vs {level}");
            }
        }
        // More predictions than test trajectories is an error, not a panic.
        let three = vec![fields[0].clone(); 3];
        assert!(physics_check(&scenario(), &test, &three).is_err());
    }
}
