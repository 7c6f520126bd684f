//! The gradient check of the whole constraint layer: the implicit-function-theorem
//! backward pass against central finite differences of the forward pass.
//!
//! The scalar checked is a random linear functional `L(B) = ⟨c, u(B)⟩` of the
//! assembled solution `u`, so `ū = c` and the backward pass returns `B̄ = ∂L/∂B`.
//! Each check draws a random direction `V` (Gaussian entries, the same shape as
//! `B`) and compares `⟨B̄, V⟩` with the central difference
//! `D(h) = (L(B + hV) − L(B − hV)) / 2h`, Richardson-extrapolated:
//! `(4·D(h/2) − D(h))/3` cancels the `O(h²)` truncation error, which is
//! otherwise what limits the check (the constrained solution is strongly
//! non-linear in `B`). How non-linear depends on the problem: where the
//! least-squares matrix is ill-conditioned (the heat equation's synthetic
//! problem, with weights sensitive to `1e6` times the basis), truncation
//! still dominates at `h = 1e-6·‖B‖/‖V‖` and vanishes only near `1e-8`, where
//! a better-conditioned problem's round-off, amplified by `1/h`, already
//! shows. So the extrapolation runs on a ladder of steps `h = step · ‖B‖/‖V‖ ·
//! 10^(−r/2)`, `r = 0..6`, and the estimate is the mean of the two adjacent
//! rungs that agree best (as the whole-model check does): a choice made from
//! the finite differences alone. Random directions
//! exercise every basis entry at once (including the points no expert samples,
//! which enter only through the operators' stencils and the assembly). Levenberg–Marquardt runs to a tight
//! tolerance so that the solves inside the finite differences are accurate far
//! below `h`; the sampled points are the same in every solve (same seed and
//! stream). The same check runs along the initial condition: `⟨ic̄, V⟩` from
//! the backward pass in the initial condition against `L(ic ± hV)`.
//!
//! On a GPU the layer solves the PDE's own TOML definition there
//! ([`AnyPde::definition`], as `bench constraint --device` does): the check
//! then covers the GPU's forward and backward kernels.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tessera_constraints::LevenbergMarquardt;
use tessera_experts::{ConstraintLayer, LayerConfig};

use tessera_scenarios::{AnyPde, PdeKind};

use crate::constraint_check::{GridSize, SyntheticProblem};
use crate::device::{Device, TermRows, attach};
use crate::error::{ToolError, at_least_one};

/// Rungs of the finite-difference step ladder: `h, h/√10, …, h/10^2.5`.
const LADDER: usize = 6;

/// Settings of [`gradcheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckConfig {
    /// The PDE.
    pub pde: PdeKind,
    /// Tile split `[s_t, s_x, (s_y)]`.
    pub split: Vec<usize>,
    /// Points sampled per expert.
    pub points_per_expert: usize,
    /// Number of basis functions `N`.
    pub n_basis: usize,
    /// The grid.
    pub grid: GridSize,
    /// Number of random directions checked.
    pub checks: usize,
    /// Relative finite-difference step (`h = step · ‖B‖/‖V‖`; `h/2` is the
    /// second step of the Richardson extrapolation).
    pub step: f64,
    /// Levenberg–Marquardt tolerance (`rtol = atol`).
    pub tolerance: f64,
    /// Levenberg–Marquardt iteration limit.
    pub max_iterations: usize,
    /// Seed of the basis, the functional, the directions and the sampling.
    pub seed: u64,
    /// Where the layer's solves run.
    pub device: Device,
}

impl GradcheckConfig {
    /// The defaults for `pde` with `split`: 2000 points per expert, `N = 16`, the
    /// PDE's [`GridSize::gradcheck_default`], 6 directions, step `1e-6`, LM
    /// tolerance `1e-14` with at most 500 iterations, seed 0, on the CPU.
    pub fn new(pde: PdeKind, split: &[usize]) -> Self {
        Self {
            pde,
            split: split.to_vec(),
            points_per_expert: 2000,
            n_basis: 16,
            grid: GridSize::gradcheck_default(pde),
            checks: 6,
            step: 1e-6,
            tolerance: 1e-14,
            max_iterations: 500,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

/// One direction's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DirectionalCheck {
    /// `⟨B̄, V⟩` from the backward pass.
    pub ift: f64,
    /// The central finite difference.
    pub finite_difference: f64,
    /// `|ift − fd| / max(|ift|, |fd|)`.
    pub rel_err: f64,
}

/// What [`gradcheck`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradcheckReport {
    /// The PDE's name.
    pub pde: &'static str,
    /// Where the layer's solves ran (`cpu`, `cuda`, `cuda:N`).
    pub device: String,
    /// The tile split.
    pub experts: Vec<usize>,
    /// Points per expert.
    pub points: usize,
    /// Number of basis functions.
    pub basis: usize,
    /// The grid's point shape.
    pub grid: Vec<usize>,
    /// Number of directions checked.
    pub checks: usize,
    /// The largest relative error over the directions.
    pub max_rel_err: f64,
    /// Every direction's comparison.
    pub directions: Vec<DirectionalCheck>,
    /// The largest relative error of the same check along the initial
    /// condition (`⟨ic̄, V⟩` from `backward_with_ic`).
    pub ic_max_rel_err: f64,
    /// Every initial-condition direction's comparison.
    pub ic_directions: Vec<DirectionalCheck>,
    /// Whether every expert's base solve converged.
    pub converged: bool,
    /// LM iterations of each expert's base solve.
    pub iterations: Vec<usize>,
    /// `‖r_k‖₂` of each expert at its base solution.
    pub final_residual_norms: Vec<f64>,
}

/// Runs the check (see the module docs).
///
/// Errors: invalid settings (no checks or points, a non-positive step), and anything the
/// problem setup or the constraint layer rejects (split, points per tile, …).
pub fn gradcheck(config: &GradcheckConfig) -> Result<GradcheckReport, ToolError> {
    if config.checks == 0 {
        return Err(ToolError::InvalidSetting {
            what: "--checks",
            value: "0".to_owned(),
            reason: "at least one direction",
        });
    }
    if !(config.step.is_finite() && config.step > 0.0) {
        return Err(ToolError::InvalidSetting {
            what: "--step",
            value: config.step.to_string(),
            reason: "must be finite and positive",
        });
    }
    at_least_one("--points", config.points_per_expert)?;
    let problem = SyntheticProblem::new(config.pde, config.grid, config.n_basis, config.seed)?;
    let lm = LevenbergMarquardt::default()
        .with_rtol(config.tolerance)?
        .with_atol(config.tolerance)?
        .with_max_iterations(config.max_iterations)?
        .with_initial(problem.initial_guess.clone())?;
    let layer_config = LayerConfig {
        lm,
        seed: config.seed,
        ..LayerConfig::new(&config.split, config.points_per_expert)
    };
    let n = problem.n_basis;
    let definition = match config.device {
        Device::Cpu => None,
        Device::Cuda(_) => Some(problem.pde.definition()?),
    };
    let pde = match &definition {
        None => problem.pde.clone(),
        Some(definition) => AnyPde::Custom(Arc::clone(definition)),
    };
    let layer = ConstraintLayer::new(Arc::new(pde), problem.grid.clone(), layer_config)?;
    let layer = attach(
        config.device,
        layer,
        definition.as_deref(),
        n,
        TermRows::Gathered,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
    let functional: Vec<f64> = (0..problem.grid.len())
        .map(|_| standard_normal(&mut rng))
        .collect();
    let value = |basis: &[f64], ic: &[f64]| -> Result<f64, ToolError> {
        let forward = layer.forward(basis, n, &[ic], 0)?;
        Ok(dot(&forward.u, &functional))
    };

    let forward = layer.forward(&problem.basis, n, &[&problem.ic], 0)?;
    let gradient = layer.backward_with_ic(&forward, &problem.basis, &functional)?;
    let directions =
        directional_checks(&mut rng, config, &problem.basis, &gradient.basis, |basis| {
            value(basis, &problem.ic)
        })?;
    let ic_directions = directional_checks(&mut rng, config, &problem.ic, &gradient.ic, |ic| {
        value(&problem.basis, ic)
    })?;
    let max_rel_err =
        |checks: &[DirectionalCheck]| checks.iter().map(|d| d.rel_err).fold(0.0, f64::max);
    Ok(GradcheckReport {
        pde: config.pde.name(),
        device: config.device.to_string(),
        experts: config.split.clone(),
        points: config.points_per_expert,
        basis: n,
        grid: config.grid.dims(),
        checks: config.checks,
        max_rel_err: max_rel_err(&directions),
        directions,
        ic_max_rel_err: max_rel_err(&ic_directions),
        ic_directions,
        converged: forward.all_converged(),
        iterations: forward.statuses.iter().map(|s| s.iterations).collect(),
        final_residual_norms: forward.statuses.iter().map(|s| s.final_residual).collect(),
    })
}

/// `config.checks` random directions `V` at `point` (the basis, or the
/// initial condition): `⟨gradient, V⟩` against the Richardson-extrapolated
/// central differences of `value` along `V`.
fn directional_checks(
    rng: &mut ChaCha8Rng,
    config: &GradcheckConfig,
    point: &[f64],
    gradient: &[f64],
    value: impl Fn(&[f64]) -> Result<f64, ToolError>,
) -> Result<Vec<DirectionalCheck>, ToolError> {
    let norm = dot(point, point).sqrt();
    let mut directions = Vec::with_capacity(config.checks);
    for _ in 0..config.checks {
        let direction: Vec<f64> = (0..point.len()).map(|_| standard_normal(rng)).collect();
        let largest = config.step * norm / dot(&direction, &direction).sqrt();
        let central = |h: f64| -> Result<f64, ToolError> {
            let shifted = |sign: f64| -> Vec<f64> {
                point
                    .iter()
                    .zip(&direction)
                    .map(|(x, v)| x + sign * h * v)
                    .collect()
            };
            Ok((value(&shifted(1.0))? - value(&shifted(-1.0))?) / (2.0 * h))
        };
        // Richardson: the central difference's error is c·h² + O(h⁴), so
        // (4·D(h/2) − D(h))/3 cancels the h² term; one estimate per rung.
        let mut estimates = Vec::with_capacity(LADDER);
        for rung in 0..LADDER {
            let h = largest * 10f64.powf(-0.5 * rung as f64);
            estimates.push((4.0 * central(0.5 * h)? - central(h)?) / 3.0);
        }
        let finite_difference = estimates
            .windows(2)
            .min_by(|a, b| (a[0] - a[1]).abs().total_cmp(&(b[0] - b[1]).abs()))
            .map_or(estimates[0], |pair| 0.5 * (pair[0] + pair[1]));
        let ift = dot(gradient, &direction);
        let scale = ift
            .abs()
            .max(finite_difference.abs())
            .max(f64::MIN_POSITIVE);
        directions.push(DirectionalCheck {
            ift,
            finite_difference,
            rel_err: (ift - finite_difference).abs() / scale,
        });
    }
    Ok(directions)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One standard normal draw (Box–Muller; `rand` alone has no normal distribution).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heat equation's default problem is ill-conditioned: a single
    /// step of `1e-6` put the finite differences 0.95 off the gradient; the
    /// ladder's smaller steps agree with it.
    #[test]
    fn the_ill_conditioned_heat_problem_passes_on_the_ladder() {
        let report = gradcheck(&GradcheckConfig {
            checks: 2,
            ..GradcheckConfig::new(PdeKind::Heat, &[1, 4])
        })
        .unwrap();
        assert!(report.converged, "{report:?}");
        assert!(report.max_rel_err <= 1e-4, "{report:?}");
        assert!(report.ic_max_rel_err <= 1e-4, "{report:?}");
    }

    /// The basis and the initial-condition gradients pass on small grids for
    /// every built-in PDE.
    #[test]
    fn every_pde_passes_in_the_basis_and_the_initial_condition() {
        for (pde, split, grid) in [
            (PdeKind::Heat, vec![1, 2], (11, 32, None)),
            (PdeKind::Advection, vec![1, 2], (11, 32, None)),
            (PdeKind::DiffusionSorption, vec![1, 2], (11, 32, None)),
            (PdeKind::NavierStokes, vec![1, 2, 2], (6, 8, Some(8))),
        ] {
            let config = GradcheckConfig {
                points_per_expert: 60,
                n_basis: 8,
                grid: GridSize {
                    nt: grid.0,
                    nx: grid.1,
                    ny: grid.2,
                },
                checks: 2,
                ..GradcheckConfig::new(pde, &split)
            };
            let report = gradcheck(&config).unwrap();
            assert!(report.converged, "{report:?}");
            assert!(report.max_rel_err <= 1e-5, "{report:?}");
            assert!(report.ic_max_rel_err <= 1e-5, "{report:?}");
        }
    }

    /// Sizes out of range are refused by their flags and values.
    #[test]
    fn bad_sizes_are_named_by_flag_and_value() {
        let heat = || GradcheckConfig::new(PdeKind::Heat, &[1, 2]);
        let grid = GridSize::gradcheck_default(PdeKind::Heat);
        for (config, message) in [
            (
                GradcheckConfig {
                    grid: GridSize {
                        ny: Some(8),
                        ..grid
                    },
                    ..heat()
                },
                "invalid --ny = 8: only for 2-D PDEs (navier-stokes)",
            ),
            (
                GradcheckConfig {
                    grid: GridSize { nt: 1, ..grid },
                    ..heat()
                },
                "invalid --nt = 1: must be at least 2 (points along a grid axis)",
            ),
            (
                GradcheckConfig {
                    points_per_expert: 0,
                    ..heat()
                },
                "invalid --points = 0: must be at least 1",
            ),
        ] {
            assert_eq!(gradcheck(&config).unwrap_err().to_string(), message);
        }
    }
}
