//! The diffusion–sorption residual as the hard-constraint layer enforces it.
//!
//! `u_t − D/R(u)·u_xx = 0` on `x ∈ (0, 1)`, `t ∈ (0, 500]`, with the
//! retardation factor `R(u) = 1 + (1−φ)/φ · ρ_s · k_f · n_f · (max(u, 0) + 1e-6)^(n_f−1)`
//! (for `u ≤ 0` the power is the constant `(1e-6)^(n_f−1)`), exactly as
//! `neptune/pdes/diffusion_sorption.py` of the paper's code
//! (ASK-Berkeley/physics-NNs-hard-constraints) writes it.
//!
//! The constraint rows follow the same file's `vector_objective_function`:
//! - **initial condition**, one row per `x_i`: `(u(0, x_i) − u0_i)/u0_i`, i.e.
//!   coefficient `1/u0_i` on `u` and right-hand side 1 — the reference divides the
//!   mismatch by the initial condition, so `u0` must be finite and non-zero;
//! - **left boundary**, one row per time level `t > 0` (the reference slices
//!   `u[1:, 0]`): `u(t, x_0) − 1`;
//! - **right boundary**, one row per `t > 0`: `u(t, x_{n−1}) − D·u_x(t, x_{n−1})`,
//!   with `u_x` the same first-difference operator as the residual uses (at the last
//!   point that is the backward difference).
//!
//! Derivatives are taken on the physical coordinates (the reference normalises the
//! grid only for the backbone's input). The default stencils are the reference's,
//! `numpy.gradient` with `edge_order=1` and `u_xx` the first difference applied
//! twice; [`FdScheme::SecondOrder`] is the consistent second-order alternative
//! (scenario key `constraint.fd = "second-order"`).

use crate::grid_check::bounded_tx;
use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, LinearRow, Pde, Term};
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::{Grid, LinearOperator};

use crate::ScenarioError;
use crate::config::DiffusionSorptionParams;

/// The floor added to `max(u, 0)` inside the Freundlich power, so that
/// `u^(n_f−1)` (a negative power) stays finite at `u = 0` (reference code:
/// `jnp.power(safe_u + 1e-6, n_f - 1)`).
pub const U_FLOOR: f64 = 1e-6;

/// 1-D diffusion–sorption (PDEBench; PI-HC-MoE §4.1) with its constants and the
/// finite-difference scheme of its derivative terms.
///
/// Terms, in the order [`Pde::residual`] receives them: `[u, u_t, u_xx, u_x]`
/// ([`DiffusionSorption::U`] …); `u_x` only enters the right boundary row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffusionSorption {
    params: DiffusionSorptionParams,
    fd: FdScheme,
}

impl Default for DiffusionSorption {
    /// The paper's constants (`D = 5e-4`, `φ = 0.29`, `ρ_s = 2880`,
    /// `k_f = 3.5e-4`, `n_f = 0.874`; see [`DiffusionSorptionParams::default`]) with
    /// the reference stencils.
    fn default() -> Self {
        Self {
            params: DiffusionSorptionParams::default(),
            fd: FdScheme::Reference,
        }
    }
}

impl DiffusionSorption {
    /// Index of the term `u`.
    pub const U: usize = 0;
    /// Index of the term `u_t`.
    pub const U_T: usize = 1;
    /// Index of the term `u_xx`.
    pub const U_XX: usize = 2;
    /// Index of the term `u_x` (right boundary only).
    pub const U_X: usize = 3;

    /// Diffusion–sorption with the given constants and stencils.
    ///
    /// Errors: a constant that is not finite, `D ≤ 0`, `φ ∉ (0, 1]`, `ρ_s < 0`,
    /// `k_f < 0`, or [`FdScheme::Periodic`] (the `x` axis is bounded).
    pub fn new(params: DiffusionSorptionParams, fd: FdScheme) -> Result<Self, ScenarioError> {
        let checks: [(&'static str, f64, bool, &'static str); 5] = [
            (
                "diffusion coefficient D",
                params.d,
                params.d > 0.0,
                "must be finite and positive",
            ),
            (
                "porosity phi",
                params.phi,
                params.phi > 0.0 && params.phi <= 1.0,
                "must lie in (0, 1]",
            ),
            (
                "bulk density rho_s",
                params.rho_s,
                params.rho_s >= 0.0,
                "must be finite and ≥ 0",
            ),
            (
                "Freundlich constant k_f",
                params.k_f,
                params.k_f >= 0.0,
                "must be finite and ≥ 0",
            ),
            (
                "Freundlich exponent n_f",
                params.n_f,
                true,
                "must be finite",
            ),
        ];
        for (what, value, ok, reason) in checks {
            if !(ok && value.is_finite()) {
                return Err(ScenarioError::InvalidValue {
                    what,
                    value,
                    reason,
                });
            }
        }
        if fd == FdScheme::Periodic {
            return Err(ScenarioError::Unsupported {
                what: "periodic finite differences",
                pde: "diffusion-sorption (bounded x axis)".to_owned(),
            });
        }
        Ok(Self { params, fd })
    }

    /// The physical constants.
    pub fn params(&self) -> &DiffusionSorptionParams {
        &self.params
    }

    /// The finite-difference scheme of the derivative terms.
    pub fn fd(&self) -> FdScheme {
        self.fd
    }

    /// The retardation factor `R(u)`, generic over the number type so that the
    /// residual's derivatives come from this one definition. The branch on `u > 0`
    /// follows the reference's `jnp.where`: for `u ≤ 0` the power is a constant and
    /// `R` has zero derivative.
    pub fn retardation<D: DualNum<Primitive = f64> + Copy>(&self, u: D) -> D {
        let p = &self.params;
        let sorption = (1.0 - p.phi) / p.phi * p.rho_s * p.k_f * p.n_f;
        let power = if u.re() > 0.0 {
            (u + U_FLOOR).powf(p.n_f - 1.0)
        } else {
            D::from(U_FLOOR.powf(p.n_f - 1.0))
        };
        power * sorption + 1.0
    }

    fn check_grid(grid: &Grid) -> Result<(usize, usize), ConstraintError> {
        bounded_tx(grid, "diffusion-sorption grid axes (t, bounded x)")
    }
}

impl Pde for DiffusionSorption {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        Self::check_grid(grid)?;
        let term = |name: &str, operator: Arc<dyn LinearOperator>| Term {
            name: name.to_owned(),
            operator,
        };
        Ok(vec![
            term("u", Arc::new(Identity::new(grid.shape()))),
            term("u_t", Arc::new(FiniteDifference::first(grid, 0, self.fd)?)),
            term(
                "u_xx",
                Arc::new(FiniteDifference::second(grid, 1, self.fd)?),
            ),
            term("u_x", Arc::new(FiniteDifference::first(grid, 1, self.fd)?)),
        ])
    }

    /// `u`, `u_t`, `u_xx`: `u_x` enters only the right boundary row.
    fn residual_terms(&self) -> Option<usize> {
        Some(Self::U_X)
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], _: &[f64], out: &mut [D]) {
        let (u, u_t, u_xx) = (z[Self::U], z[Self::U_T], z[Self::U_XX]);
        out[0] = u_t - u_xx * self.params.d / self.retardation(u);
    }

    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        let (nt, nx) = Self::check_grid(grid)?;
        if ic.len() != nx {
            return Err(ConstraintError::ShapeMismatch {
                what: "diffusion-sorption initial condition [x]",
                expected: vec![nx],
                got: vec![ic.len()],
            });
        }
        if let Some(&bad) = ic.iter().find(|v| !(v.is_finite() && **v != 0.0)) {
            return Err(ConstraintError::InvalidValue {
                what: "diffusion-sorption initial condition",
                value: bad,
                reason: "the IC rows divide by u0, which must be finite and non-zero",
            });
        }
        let shape = grid.shape();
        let initial = ic.iter().enumerate().map(|(i, &u0)| LinearRow {
            point: shape.flat(&[0, i]),
            coeffs: vec![(Self::U, 1.0 / u0)],
            rhs: 1.0,
        });
        let left = (1..nt).map(|t| LinearRow {
            point: shape.flat(&[t, 0]),
            coeffs: vec![(Self::U, 1.0)],
            rhs: 1.0,
        });
        let right = (1..nt).map(|t| LinearRow {
            point: shape.flat(&[t, nx - 1]),
            coeffs: vec![(Self::U, 1.0), (Self::U_X, -self.params.d)],
            rhs: 0.0,
        });
        Ok(initial.chain(left).chain(right).collect())
    }
}
