//! Linear advection in 1-D on a periodic interval — the smallest test problem with
//! a first-order space derivative and a closed-form solution, used by the tests of
//! every layer.
//!
//! `u_t + c u_x = 0` on a periodic `x` axis of period `L`. Every initial condition
//! is carried unchanged at speed `c`: `u(t, x) = u0(x − c t)` (characteristics are
//! the lines `x − c t = const`), the argument wrapped into one period.

use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents};
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::{Axis, Grid, LinearOperator};

use crate::ScenarioError;
use crate::config::AdvectionParams;
use crate::heat::{initial_rows, initial_rows_backward};

/// `u_t + c u_x = 0` on a periodic interval, with its closed-form solution.
///
/// Terms: `[u, u_t, u_x]` ([`Advection::U`] …). `u_x` is the central periodic
/// difference and `u_t` the second-order `numpy.gradient(edge_order=2)` stencil
/// along the bounded time axis, so the residual of the exact solution is `O(h²)`
/// everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Advection {
    speed: f64,
}

impl Default for Advection {
    /// The speed of [`AdvectionParams::default`].
    fn default() -> Self {
        Self {
            speed: AdvectionParams::default().speed,
        }
    }
}

impl Advection {
    /// Index of the term `u`.
    pub const U: usize = 0;
    /// Index of the term `u_t`.
    pub const U_T: usize = 1;
    /// Index of the term `u_x`.
    pub const U_X: usize = 2;

    /// Advection at speed `c`.
    ///
    /// Errors: `c` is not finite.
    pub fn new(speed: f64) -> Result<Self, ScenarioError> {
        if !speed.is_finite() {
            return Err(ScenarioError::InvalidValue {
                what: "advection speed",
                value: speed,
                reason: "must be finite",
            });
        }
        Ok(Self { speed })
    }

    /// The transport speed `c`.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The grid this PDE expects: `t = linspace(0, t_max, nt)` and `nx` points of
    /// the periodic unit interval.
    pub fn grid(nt: usize, nx: usize, t_max: f64) -> Result<Grid, ScenarioError> {
        Ok(Grid::new(vec![
            Axis::linspace("t", 0.0, t_max, nt)?,
            Axis::periodic("x", 0.0, 1.0, nx)?,
        ])?)
    }

    /// The exact solution `u0(x − c t)` on every point of `grid` (`[t, x]`); `u0` is
    /// called with arguments wrapped into `[x_0, x_0 + L)`, one period of the axis.
    ///
    /// Errors: the grid is not 2-D with a periodic `x` axis.
    pub fn exact_field(
        &self,
        grid: &Grid,
        u0: impl Fn(f64) -> f64,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_grid(grid)?;
        let (t, x) = (grid.axis(0).coords(), grid.axis(1));
        let (start, period) = (x.coords()[0], x.length());
        Ok(t.iter()
            .flat_map(|&t| x.coords().iter().map(move |&x| x - self.speed * t))
            .map(|foot| u0(start + (foot - start).rem_euclid(period)))
            .collect())
    }
}

fn check_grid(grid: &Grid) -> Result<(), ConstraintError> {
    if grid.ndim() != 2 || !grid.axis(1).is_periodic() {
        return Err(ConstraintError::ShapeMismatch {
            what: "advection grid axes (t, periodic x)",
            expected: vec![2],
            got: vec![grid.ndim()],
        });
    }
    Ok(())
}

impl Pde for Advection {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        check_grid(grid)?;
        let term = |name: &str, operator: Arc<dyn LinearOperator>| Term {
            name: name.to_owned(),
            operator,
        };
        Ok(vec![
            term("u", Arc::new(Identity::new(grid.shape()))),
            term(
                "u_t",
                Arc::new(FiniteDifference::first(grid, 0, FdScheme::SecondOrder)?),
            ),
            term(
                "u_x",
                Arc::new(FiniteDifference::first(grid, 1, FdScheme::Periodic)?),
            ),
        ])
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], _: &[f64], out: &mut [D]) {
        out[0] = z[Self::U_T] + z[Self::U_X] * self.speed;
    }

    /// `u(0, x_i) − u0_i` for every `x_i`; a periodic axis has no boundary rows.
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        check_grid(grid)?;
        initial_rows(grid, ic, Self::U)
    }

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
