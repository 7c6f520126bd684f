//! The diffusion–sorption residual as the hard-constraint layer enforces it.
//!
//! `u_t − D/R(u)·u_xx = 0` on `x ∈ (0, 1)`, `t ∈ (0, 500]`, with the
//! retardation factor `R(u) = 1 + (1−φ)/φ · ρ_s · k_f · n_f · (max(u, 0) + 1e-6)^(n_f−1)`
//! (for `u ≤ 0` the power is the constant `(1e-6)^(n_f−1)`), exactly as
//! `neptune/pdes/diffusion_sorption.py` of the paper's code
//! (ASK-Berkeley/physics-NNs-hard-constraints) writes it.
//!
//! The initial-condition rows follow the same file's `vector_objective_function`:
//! one row per `x_i`, `(u(0, x_i) − u0_i)/u0_i`, i.e. coefficient `1/u0_i` on `u`
//! and right-hand side 1 — the reference divides the mismatch by the initial
//! condition, so `u0` must be finite and non-zero.
//!
//! The boundary rows, one per time level `t > 0` and side (the reference slices
//! `u[1:, 0]`), depend on [`BoundaryPlacement`] (scenario key `[pde] boundary`).
//! The grid's `x` points are cell centres `x_i = (i + ½)·h`, so the first and last
//! points lie half a cell inside the domain `[0, 1]`.
//! - [`BoundaryPlacement::CellCentres`], the paper's code: `u(t, x_0) − 1` on the
//!   left and `u(t, x_{n−1}) − D·u_x(t, x_{n−1})` on the right, with `u_x` the
//!   residual's first-difference operator (backward at the last point). On the
//!   finite-volume truth these rows are off by about `(h/2)·|u_x|`, which is large
//!   at the left, where the sorption front enters.
//! - [`BoundaryPlacement::Faces`] (default), the conditions the ground truth
//!   (PDEBench's finite-volume scheme, [`super::reference_solver`]) imposes, at
//!   the faces `x = 0` and `x = 1`. The face value is the half-cell Taylor step
//!   from the boundary centre with the scheme's own `u_x`: `u(0) ≈ u_0 − x_0·u_x(x_0)`
//!   and `u(1) ≈ u_{n−1} + (1 − x_{n−1})·u_x(x_{n−1})`. With the reference
//!   stencils `u_x(x_0) = (u_1 − u_0)/h`, so the left row is the linear
//!   extrapolation `(3u_0 − u_1)/2 − 1` (second order in `h`), and a row still
//!   reads one grid point: the neighbour enters through the `u_x` term, so no
//!   shift operator is needed. The right condition takes the scheme's sign: its
//!   ghost value is `u_n = D·(u_{n−2} − u_{n−1})/h = −D·u_x(x_{n−1})`, i.e.
//!   `u(1) + D·u_x(1) = 0` as `h → 0` (the paper writes `u = D·u_x`; the two
//!   differ by `2D·|u_x|`, with `D = 5e-4`), giving the row
//!   `u_{n−1} + (1 − x_{n−1} + D)·u_x(x_{n−1})`.
//!
//!   The finite-volume scheme itself places the left value at its ghost centre
//!   `−h_fv/2` of its own cells `h_fv` (first order), so on truth solved on finer
//!   cells and averaged onto the grid the face rows' residual is that scheme's
//!   own `O(h_fv·u_x)` error plus the extrapolation's `O(h²·u_xx)`, and vanishes
//!   as the truth is refined; the cell-centre rows' residual does not (the test
//!   `diffusion_sorption_boundary_rows` of this crate measures both).
//!
//! Derivatives are taken on the physical coordinates (the reference normalises the
//! grid only for the backbone's input). The default stencils are the reference's,
//! `numpy.gradient` with `edge_order=1` and `u_xx` the first difference applied
//! twice; [`FdScheme::SecondOrder`] is the consistent second-order alternative
//! (scenario key `constraint.fd = "second-order"`).

use crate::grid_check::bounded_tx;
use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents};
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::{Grid, LinearOperator};

use super::reference_solver::SOLUBILITY;
use crate::ScenarioError;
use crate::config::{BoundaryPlacement, DiffusionSorptionParams};

/// The floor added to `max(u, 0)` inside the Freundlich power, so that
/// `u^(n_f−1)` (a negative power) stays finite at `u = 0` (reference code:
/// `jnp.power(safe_u + 1e-6, n_f - 1)`).
pub const U_FLOOR: f64 = 1e-6;

/// The `x` domain, whose ends are the faces where [`BoundaryPlacement::Faces`]
/// imposes the boundary conditions.
const DOMAIN: (f64, f64) = (0.0, 1.0);

/// One side's boundary row: `(term, coefficient)` pairs and the right-hand side.
type BoundaryRow = (Vec<(usize, f64)>, f64);

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

    /// Where the boundary rows sit.
    pub fn boundary(&self) -> BoundaryPlacement {
        self.params.boundary
    }

    /// The left and right boundary rows' `(coefficients, rhs)` when the first and
    /// last grid points are `x_first` and `x_last` (see the module docs): the
    /// same at every time level.
    fn boundary_coeffs(&self, x_first: f64, x_last: f64) -> (BoundaryRow, BoundaryRow) {
        let d = self.params.d;
        match self.params.boundary {
            BoundaryPlacement::CellCentres => (
                (vec![(Self::U, 1.0)], SOLUBILITY),
                (vec![(Self::U, 1.0), (Self::U_X, -d)], 0.0),
            ),
            BoundaryPlacement::Faces => (
                (
                    vec![(Self::U, 1.0), (Self::U_X, -(x_first - DOMAIN.0))],
                    SOLUBILITY,
                ),
                (
                    vec![(Self::U, 1.0), (Self::U_X, DOMAIN.1 - x_last + d)],
                    0.0,
                ),
            ),
        }
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
        let x = grid.axis(1).coords();
        let (left, right) = self.boundary_coeffs(x[0], x[nx - 1]);
        let side = |i: usize, (coeffs, rhs): BoundaryRow| {
            (1..nt).map(move |t| LinearRow {
                point: shape.flat(&[t, i]),
                coeffs: coeffs.clone(),
                rhs,
            })
        };
        let (left, right) = (side(0, left), side(nx - 1, right));
        Ok(initial.chain(left).chain(right).collect())
    }

    /// The initial rows `u/u0 − 1` carry `u0` in their coefficient
    /// `1/u0`, whose derivative is `−1/u0²`; the boundary rows do not read it.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        Ok(ic
            .iter()
            .zip(rows)
            .map(|(&u0, bar)| -bar.coeffs[0] / (u0 * u0))
            .collect())
    }
}
