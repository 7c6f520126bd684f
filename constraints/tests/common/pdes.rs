//! Test-local PDEs, shared by the `constraints` and `experts` test suites (the
//! experts tests include this file by path), so both crates stay self-contained.
//!
//! - [`SorptionLike`]: shaped exactly like diffusion–sorption,
//!   `u_t − D/R(u)·u_xx` with the Freundlich retardation and the paper's constants;
//!   terms `[u, u_t, u_xx, u_x]`, IC rows, a Dirichlet left and a Robin right boundary.
//! - [`QuadraticTransport`]: shaped like vorticity Navier–Stokes,
//!   `w_t + u·w_x − v·w_y − ν(w_xx + w_yy)` with `u = ∂_y w`, `v = ∂_x w` and
//!   terms `[w, w_t, w_x, w_y, u, v, w_xx, w_yy]` (any
//!   linear maps of `w` make the residual quadratic in the terms), optionally with
//!   a solution map (a mollifier in `t`) and offset (the IC broadcast in time).
#![allow(dead_code)]

use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{
    ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents, sum_repeats,
};
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::ops::scale::Scale;
use tessera_meshes::{Grid, LinearOperator};

/// Diffusion coefficient `D`.
pub const D: f64 = 5e-4;
const PHI: f64 = 0.29;
const RHO_S: f64 = 2880.0;
const K_F: f64 = 3.5e-4;
const N_F: f64 = 0.874;

/// Diffusion–sorption-shaped residual (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct SorptionLike;

impl SorptionLike {
    /// `R(u) = 1 + ((1−φ)/φ)ρ_s k_f n_f (max(u, 0) + 1e-6)^(n_f − 1)`.
    pub fn retardation<T: DualNum<Primitive = f64> + Copy>(u: T) -> T {
        let clipped = if u.re() > 0.0 { u } else { T::from(0.0) };
        let sorption = (1.0 - PHI) / PHI * RHO_S * K_F * N_F;
        (clipped + 1e-6).powf(N_F - 1.0) * sorption + 1.0
    }
}

fn term(name: &str, operator: Arc<dyn LinearOperator>) -> Term {
    Term {
        name: name.to_owned(),
        operator,
    }
}

impl Pde for SorptionLike {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        Ok(vec![
            term("u", Arc::new(Identity::new(grid.shape()))),
            term(
                "u_t",
                Arc::new(FiniteDifference::first(grid, 0, FdScheme::Reference)?),
            ),
            term(
                "u_xx",
                Arc::new(FiniteDifference::second(grid, 1, FdScheme::Reference)?),
            ),
            term(
                "u_x",
                Arc::new(FiniteDifference::first(grid, 1, FdScheme::Reference)?),
            ),
        ])
    }

    fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
        out[0] = z[1] - z[2] * D / Self::retardation(z[0]);
    }

    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        let (nt, nx) = (grid.axis(0).len(), grid.axis(1).len());
        if ic.len() != nx {
            return Err(ConstraintError::ShapeMismatch {
                what: "ic",
                expected: vec![nx],
                got: vec![ic.len()],
            });
        }
        let mut rows: Vec<LinearRow> = ic
            .iter()
            .enumerate()
            .map(|(i, &v)| LinearRow {
                point: i,
                coeffs: vec![(0, 1.0)],
                rhs: v,
            })
            .collect();
        for t in 1..nt {
            rows.push(LinearRow {
                point: t * nx,
                coeffs: vec![(0, 1.0)],
                rhs: 1.0,
            });
            rows.push(LinearRow {
                point: t * nx + nx - 1,
                coeffs: vec![(0, 1.0), (3, -D)],
                rhs: 0.0,
            });
        }
        Ok(rows)
    }

    /// The initial rows' right-hand sides are `u0`.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        Ok(rows[..ic.len()].iter().map(|bar| bar.rhs).collect())
    }
}

/// Navier–Stokes-shaped quadratic residual (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct QuadraticTransport {
    /// Viscosity `ν`.
    pub nu: f64,
    /// Whether to use a mollifier solution map `S = diag(t/T)` and the IC as offset.
    pub with_solution_map: bool,
}

impl Pde for QuadraticTransport {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        let fd = |axis, second: bool| -> Result<Arc<dyn LinearOperator>, ConstraintError> {
            Ok(Arc::new(if second {
                FiniteDifference::second(grid, axis, FdScheme::Periodic)?
            } else {
                FiniteDifference::first(grid, axis, FdScheme::Periodic)?
            }))
        };
        Ok(vec![
            term("w", Arc::new(Identity::new(grid.shape()))),
            term(
                "w_t",
                Arc::new(FiniteDifference::first(grid, 0, FdScheme::Reference)?),
            ),
            term("w_x", fd(1, false)?),
            term("w_y", fd(2, false)?),
            term("u", fd(2, false)?),
            term("v", fd(1, false)?),
            term("w_xx", fd(1, true)?),
            term("w_yy", fd(2, true)?),
        ])
    }

    fn residual<T: DualNum<Primitive = f64> + Copy>(&self, z: &[T], _: &[f64], out: &mut [T]) {
        out[0] = z[1] + z[4] * z[2] - z[5] * z[3] - (z[6] + z[7]) * self.nu;
    }

    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        let plane = grid.len() / grid.axis(0).len();
        if ic.len() != plane {
            return Err(ConstraintError::ShapeMismatch {
                what: "ic",
                expected: vec![plane],
                got: vec![ic.len()],
            });
        }
        if self.with_solution_map {
            // The IC is built into the solution; no rows needed.
            return Ok(Vec::new());
        }
        Ok(ic
            .iter()
            .enumerate()
            .map(|(i, &v)| LinearRow {
                point: i,
                coeffs: vec![(0, 1.0)],
                rhs: v,
            })
            .collect())
    }

    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        if !self.with_solution_map {
            return Ok(None);
        }
        let t = grid.axis(0).coords();
        let t_max = t[t.len() - 1];
        let profile: Vec<f64> = t.iter().map(|ti| ti / t_max).collect();
        Ok(Some(Arc::new(Scale::along_axis(
            grid.shape(),
            0,
            &profile,
        )?)))
    }

    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        if !self.with_solution_map {
            return Ok(None);
        }
        Ok(Some((0..grid.len()).map(|p| ic[p % ic.len()]).collect()))
    }

    /// `u0` is either the initial rows' right-hand sides or the offset.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        Ok(match offset {
            Some(offset) => sum_repeats(offset, ic.len()),
            None => rows.iter().map(|bar| bar.rhs).collect(),
        })
    }
}
