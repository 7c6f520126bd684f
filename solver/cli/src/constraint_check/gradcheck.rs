//! The gradient check of the whole constraint layer: the implicit-function-theorem
//! backward pass against central finite differences of the forward pass.
//!
//! The scalar checked is a random linear functional `L(B) = ⟨c, u(B)⟩` of the
//! assembled solution `u`, so `ū = c` and the backward pass returns `B̄ = ∂L/∂B`.
//! Each check draws a random direction `V` (Gaussian entries, the same shape as
//! `B`) and compares `⟨B̄, V⟩` with the central difference
//! `D(h) = (L(B + hV) − L(B − hV)) / 2h`, `h = step · ‖B‖/‖V‖`, Richardson-
//! extrapolated: `(4·D(h/2) − D(h))/3` cancels the `O(h²)` truncation error, which
//! is otherwise what limits the check (the constrained solution is strongly
//! non-linear in `B`), and lets `h` stay large enough that the round-off of the
//! solves, amplified by `1/h`, stays far below the tolerance. Random directions
//! exercise every basis entry at once (including the points no expert samples,
//! which enter only through the operators' stencils and the assembly). Levenberg–Marquardt runs to a tight
//! tolerance so that the solves inside the finite differences are accurate far
//! below `h`; the sampled points are the same in every solve (same seed and
//! stream).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tessera_constraints::LevenbergMarquardt;
use tessera_experts::{ConstraintLayer, LayerConfig};

use tessera_scenarios::PdeKind;

use crate::constraint_check::{GridSize, SyntheticProblem};
use crate::error::ToolError;

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
}

impl GradcheckConfig {
    /// The defaults for `pde` with `split`: 2000 points per expert, `N = 16`, the
    /// PDE's [`GridSize::gradcheck_default`], 6 directions, step `1e-6`, LM
    /// tolerance `1e-14` with at most 500 iterations, seed 0.
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
    /// Whether every expert's base solve converged.
    pub converged: bool,
    /// LM iterations of each expert's base solve.
    pub iterations: Vec<usize>,
    /// `‖r_k‖₂` of each expert at its base solution.
    pub final_residual_norms: Vec<f64>,
}

/// Runs the check (see the module docs).
///
/// Errors: invalid settings (no checks, a non-positive step), and anything the
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
    let layer = ConstraintLayer::new(
        Arc::new(problem.pde.clone()),
        problem.grid.clone(),
        layer_config,
    )?;
    let ics = [problem.ic.as_slice()];
    let n = problem.n_basis;

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
    let functional: Vec<f64> = (0..problem.grid.len())
        .map(|_| standard_normal(&mut rng))
        .collect();
    let value = |basis: &[f64]| -> Result<f64, ToolError> {
        let forward = layer.forward(basis, n, &ics, 0)?;
        Ok(dot(&forward.u, &functional))
    };

    let forward = layer.forward(&problem.basis, n, &ics, 0)?;
    let basis_bar = layer.backward(&forward, &problem.basis, &functional)?;
    let basis_norm = dot(&problem.basis, &problem.basis).sqrt();
    let mut directions = Vec::with_capacity(config.checks);
    for _ in 0..config.checks {
        let direction: Vec<f64> = (0..problem.basis.len())
            .map(|_| standard_normal(&mut rng))
            .collect();
        let h = config.step * basis_norm / dot(&direction, &direction).sqrt();
        let central = |h: f64| -> Result<f64, ToolError> {
            let shifted = |sign: f64| -> Vec<f64> {
                problem
                    .basis
                    .iter()
                    .zip(&direction)
                    .map(|(b, v)| b + sign * h * v)
                    .collect()
            };
            Ok((value(&shifted(1.0))? - value(&shifted(-1.0))?) / (2.0 * h))
        };
        // Richardson: the central difference's error is c·h² + O(h⁴), so
        // (4·D(h/2) − D(h))/3 cancels the h² term.
        let finite_difference = (4.0 * central(0.5 * h)? - central(h)?) / 3.0;
        let ift = dot(&basis_bar, &direction);
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
    Ok(GradcheckReport {
        pde: config.pde.name(),
        experts: config.split.clone(),
        points: config.points_per_expert,
        basis: n,
        grid: config.grid.dims(),
        checks: config.checks,
        max_rel_err: directions.iter().map(|d| d.rel_err).fold(0.0, f64::max),
        directions,
        converged: forward.all_converged(),
        iterations: forward.statuses.iter().map(|s| s.iterations).collect(),
        final_residual_norms: forward.statuses.iter().map(|s| s.final_residual).collect(),
    })
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
