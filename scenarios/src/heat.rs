//! The 1-D heat equation with homogeneous Dirichlet boundaries — a small linear
//! test problem with a closed-form solution, used by the tests of every layer.
//!
//! `u_t = κ u_xx` on `x ∈ [a, b]`, `u(t, a) = u(t, b) = 0`. An initial condition
//! that is a finite sine series `u0(x) = Σ_k c_k sin(kπ(x − a)/L)`, `L = b − a`,
//! evolves as `u(t, x) = Σ_k c_k exp(−κ (kπ/L)² t) sin(kπ(x − a)/L)`
//! (separation of variables; each sine is an eigenfunction of `∂²` with the
//! boundary values zero).

use crate::grid_check::bounded_tx;
use std::f64::consts::PI;
use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents};
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::{Axis, Grid, LinearOperator};

use crate::ScenarioError;
use crate::config::HeatParams;

/// `u_t = κ u_xx` with zero Dirichlet boundaries, its finite-difference scheme and
/// its closed-form sine-series solution.
///
/// Terms: `[u, u_t, u_xx]` ([`Heat::U`] …). Grids have a bounded `x` axis whose end
/// points are the boundary (see [`Heat::grid`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heat {
    kappa: f64,
    fd: FdScheme,
}

impl Default for Heat {
    /// `κ` from [`HeatParams::default`] with second-order stencils.
    fn default() -> Self {
        Self {
            kappa: HeatParams::default().kappa,
            fd: FdScheme::SecondOrder,
        }
    }
}

impl Heat {
    /// Index of the term `u`.
    pub const U: usize = 0;
    /// Index of the term `u_t`.
    pub const U_T: usize = 1;
    /// Index of the term `u_xx`.
    pub const U_XX: usize = 2;

    /// The heat equation with diffusivity `kappa`, derivatives by `fd` in `t` and `x`.
    ///
    /// Errors: `kappa` not finite and positive, or [`FdScheme::Periodic`] (both
    /// axes are bounded).
    pub fn new(kappa: f64, fd: FdScheme) -> Result<Self, ScenarioError> {
        if !(kappa.is_finite() && kappa > 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "heat diffusivity kappa",
                value: kappa,
                reason: "must be finite and positive",
            });
        }
        if fd == FdScheme::Periodic {
            return Err(ScenarioError::Unsupported {
                what: "periodic finite differences",
                pde: "heat (Dirichlet boundaries)".to_owned(),
            });
        }
        Ok(Self { kappa, fd })
    }

    /// The diffusivity `κ`.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    /// The finite-difference scheme of the derivative terms.
    pub fn fd(&self) -> FdScheme {
        self.fd
    }

    /// The grid this PDE expects: `t = linspace(0, t_max, nt)` and
    /// `x = linspace(0, 1, nx)` with both boundary points on the grid.
    pub fn grid(nt: usize, nx: usize, t_max: f64) -> Result<Grid, ScenarioError> {
        Ok(Grid::new(vec![
            Axis::linspace("t", 0.0, t_max, nt)?,
            Axis::linspace("x", 0.0, 1.0, nx)?,
        ])?)
    }

    /// The exact solution at `(t, x)` for the initial condition
    /// `Σ_k sines[k−1] · sin(kπ(x − a)/L)` on the interval `[a, b]`, `L = b − a`.
    pub fn exact(&self, sines: &[f64], interval: (f64, f64), t: f64, x: f64) -> f64 {
        let (a, length) = (interval.0, interval.1 - interval.0);
        sines
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let k = (i + 1) as f64 * PI / length;
                c * (-self.kappa * k * k * t).exp() * (k * (x - a)).sin()
            })
            .sum()
    }

    /// The exact solution on every point of `grid` (`[t, x]`), the interval being
    /// the grid's `x` span.
    ///
    /// Errors: the grid is not 2-D with a bounded `x` axis.
    pub fn exact_field(&self, grid: &Grid, sines: &[f64]) -> Result<Vec<f64>, ConstraintError> {
        check_grid(grid)?;
        let (t, x) = (grid.axis(0).coords(), grid.axis(1).coords());
        let interval = (x[0], x[x.len() - 1]);
        Ok(t.iter()
            .flat_map(|&t| x.iter().map(move |&x| (t, x)))
            .map(|(t, x)| self.exact(sines, interval, t, x))
            .collect())
    }
}

fn check_grid(grid: &Grid) -> Result<(usize, usize), ConstraintError> {
    bounded_tx(grid, "heat grid axes (t, bounded x)")
}

impl Pde for Heat {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        check_grid(grid)?;
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
        ])
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], _: &[f64], out: &mut [D]) {
        out[0] = z[Self::U_T] - z[Self::U_XX] * self.kappa;
    }

    /// `u(0, x_i) − u0_i` for every `x_i`, then `u(t, x_0)` and `u(t, x_{n−1})` for
    /// every `t > 0` (the first time level is the initial condition's).
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        let (nt, nx) = check_grid(grid)?;
        let shape = grid.shape();
        let mut rows = initial_rows(grid, ic, Self::U)?;
        for t in 1..nt {
            for i in [0, nx - 1] {
                rows.push(LinearRow {
                    point: shape.flat(&[t, i]),
                    coeffs: vec![(Self::U, 1.0)],
                    rhs: 0.0,
                });
            }
        }
        Ok(rows)
    }

    /// The initial rows' right-hand sides are `u0`; nothing else reads it.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        Ok(initial_rows_backward(rows, ic.len()))
    }
}

/// The cotangent of `u0` through the rows of [`initial_rows`] (the first
/// `ic_len` of `rows`): each row's right-hand side is its point's `u0`.
pub(crate) fn initial_rows_backward(rows: &[LinearRowBar], ic_len: usize) -> Vec<f64> {
    rows[..ic_len].iter().map(|bar| bar.rhs).collect()
}

/// The rows `u(0, p) − u0(p)` for every spatial point `p` of the first time level
/// (term `u` at index `u_term`), shared by the test PDEs whose initial condition is
/// plain data.
///
/// Errors: `ic` does not hold one finite value per spatial point.
pub(crate) fn initial_rows(
    grid: &Grid,
    ic: &[f64],
    u_term: usize,
) -> Result<Vec<LinearRow>, ConstraintError> {
    let spatial = grid.len() / grid.shape().dims()[0];
    if ic.len() != spatial {
        return Err(ConstraintError::ShapeMismatch {
            what: "initial condition [x, (y)]",
            expected: grid.shape().dims()[1..].to_vec(),
            got: vec![ic.len()],
        });
    }
    if !ic.iter().all(|v| v.is_finite()) {
        return Err(ConstraintError::NonFinite {
            what: "initial condition",
        });
    }
    // The first time level occupies the first `spatial` flat indices.
    Ok(ic
        .iter()
        .enumerate()
        .map(|(p, &u0)| LinearRow {
            point: p,
            coeffs: vec![(u_term, 1.0)],
            rhs: u0,
        })
        .collect())
}
