//! The Navier–Stokes vorticity residual and the model form that builds the initial
//! condition in, as the hard-constraint layer enforces them.
//!
//! `w_t + v·∇w − ν Δw = 0` on the periodic unit square, no forcing, `ν = 1e-4`
//! (the paper's "Re 1e4"; `neptune/pdes/navier_stokes_2d.py` of
//! ASK-Berkeley/physics-NNs-hard-constraints hard-codes `Re = 1e4`). The velocity
//! comes from the vorticity through the stream function, `−Δψ = w`,
//! `v = (∂_y ψ, −∂_x ψ)`, spectrally: `v̂_x = i k_y ŵ/|k|²`, `v̂_y = −i k_x ŵ/|k|²`,
//! zero mean flow.
//!
//! **Model form.** The reference multiplies every basis function by
//! `0.005·t/T` and removes its spatial mean per time level
//! (`basis_mollifier` in `neptune/models/sequential.py`, scale from
//! `configs/models/fno3d-*.yaml`), then adds the initial condition back after the
//! solve; the terms of the initial condition enter the residual as offsets
//! (`lhs[...] += ic[...]`). So the initial condition holds exactly and there are no
//! linear rows: [`Pde::solution_map`] is `S = (remove spatial mean) ∘ (scale by
//! 0.005·t/T)` and [`Pde::solution_offset`] the initial condition broadcast over
//! `t`. (The reference also subtracts the spatial mean of the final field, which
//! only differs from this when the initial condition has a non-zero mean — GRF
//! initial conditions have none — and would break the exact initial condition.)
//!
//! **Derivative operators of the reference** (`compute_pde_residual_terms`):
//! - `w_x`, `w_y`: `jnp.gradient` per time level times `n`, i.e. `numpy.gradient`
//!   with `edge_order=1` and spacing `1/n` — *not* wrapping around, although the
//!   axes are periodic (one-sided differences on the first and last row/column);
//! - `Δw`: the same first difference applied twice along `x` plus along `y`;
//! - `w_t`: `jnp.gradient` along `t` divided by `dt` (edge order 1);
//! - velocity: spectral (`fft2`, multiply, `irfft2`). The meshes multiplier zeroes
//!   an odd multiplier on the Nyquist modes where `−k ≡ k`; numpy's `irfft2` does
//!   the same for `v_x` but keeps `v_y` on the `x`-Nyquist row with `k_x = −π n`.
//!   The two agree on every field without energy in the `x`-Nyquist modes.
//!
//! [`Derivatives::Spectral`] is the more accurate option: spectral `w_x`, `w_y`,
//! `Δw` (exact for band-limited periodic fields) and the second-order
//! `numpy.gradient(edge_order=2)` stencil in `t`.
//!
//! The reference squares the pointwise residual before handing it to the
//! least-squares solver (`jnp.square(lhs - rhs)`), which makes the Jacobian vanish
//! at a zero residual; here the residual itself is the least-squares row, as for
//! every other PDE.

use std::sync::Arc;

use num_dual::DualNum;
use rustfft::num_complex::Complex64;
use tessera_constraints::{
    ConstraintError, LinearRow, LinearRowBar, Pde, Term, check_cotangents, sum_repeats,
};
use tessera_meshes::ops::combination::LinearCombination;
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::spectral::FourierMultiplier;
use tessera_meshes::{CenterScale, Grid, LinearOperator, MeshError};

use crate::ScenarioError;
use crate::config::NavierStokesParams;

/// The factor of the reference's basis mollifier `0.005·t/T`
/// (`mollifier: 0.005` in `configs/models/fno3d-64-8m-hard-constraint-moe.yaml`).
pub const MOLLIFIER_SCALE: f64 = 0.005;

/// Which operators compute the derivative terms (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Derivatives {
    /// The reference's: non-wrapping `numpy.gradient` (edge order 1, spacing
    /// `1/n`) for `w_x`, `w_y`, `Δw` and `w_t`; spectral velocity.
    #[default]
    Reference,
    /// Spectral `w_x`, `w_y`, `Δw` and velocity; second-order stencil in `t`.
    Spectral,
}

/// 2-D Navier–Stokes in vorticity form on the periodic unit square
/// (PI-HC-MoE §4.2), with the reference's initial-condition model form.
///
/// Terms, in the order [`Pde::residual`] receives them:
/// `[w_t, v_x, v_y, w_x, w_y, Δw]` ([`NavierStokes::W_T`] …), where `v_x`, `v_y`
/// are the velocity components (not derivatives of `v`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NavierStokes {
    nu: f64,
    derivatives: Derivatives,
}

impl Default for NavierStokes {
    /// `ν = 1e-4` (the paper; see [`NavierStokesParams::default`]) with the
    /// reference's derivative operators.
    fn default() -> Self {
        Self {
            nu: NavierStokesParams::default().nu,
            derivatives: Derivatives::Reference,
        }
    }
}

impl NavierStokes {
    /// Index of the term `w_t`.
    pub const W_T: usize = 0;
    /// Index of the velocity component `v_x = ∂_y ψ`.
    pub const V_X: usize = 1;
    /// Index of the velocity component `v_y = −∂_x ψ`.
    pub const V_Y: usize = 2;
    /// Index of the term `w_x`.
    pub const W_X: usize = 3;
    /// Index of the term `w_y`.
    pub const W_Y: usize = 4;
    /// Index of the term `Δw`.
    pub const LAP_W: usize = 5;

    /// Navier–Stokes with the given viscosity and derivative operators.
    ///
    /// Errors: `ν` is not finite and non-negative.
    pub fn new(
        params: NavierStokesParams,
        derivatives: Derivatives,
    ) -> Result<Self, ScenarioError> {
        if !(params.nu.is_finite() && params.nu >= 0.0) {
            return Err(ScenarioError::InvalidValue {
                what: "viscosity nu",
                value: params.nu,
                reason: "must be finite and non-negative",
            });
        }
        Ok(Self {
            nu: params.nu,
            derivatives,
        })
    }

    /// The viscosity `ν`.
    pub fn nu(&self) -> f64 {
        self.nu
    }

    /// The derivative operators in use.
    pub fn derivatives(&self) -> Derivatives {
        self.derivatives
    }

    fn check_grid(grid: &Grid) -> Result<(), ConstraintError> {
        let ok = grid.ndim() == 3
            && !grid.axis(0).is_periodic()
            && grid.axis(1).is_periodic()
            && grid.axis(2).is_periodic();
        if ok {
            Ok(())
        } else {
            Err(ConstraintError::ShapeMismatch {
                what: "Navier-Stokes grid axes (t, periodic x, periodic y)",
                expected: vec![3],
                got: vec![grid.ndim()],
            })
        }
    }

    fn check_ic(grid: &Grid, ic: &[f64]) -> Result<(), ConstraintError> {
        let dims = grid.shape().dims();
        if ic.len() != dims[1] * dims[2] {
            return Err(ConstraintError::ShapeMismatch {
                what: "Navier-Stokes initial condition [x, y]",
                expected: dims[1..].to_vec(),
                got: vec![ic.len()],
            });
        }
        if !ic.iter().all(|v| v.is_finite()) {
            return Err(ConstraintError::NonFinite {
                what: "Navier-Stokes initial condition",
            });
        }
        Ok(())
    }
}

type Operator = Arc<dyn LinearOperator>;

/// `[w_t, w_x, w_y, Δw]` as the reference computes them: non-wrapping
/// `numpy.gradient` (edge order 1) on every axis, `Δ` as `D_x D_x + D_y D_y`.
fn reference_derivatives(grid: &Grid) -> Result<[Operator; 4], ConstraintError> {
    let first = |axis| FiniteDifference::first(grid, axis, FdScheme::Reference);
    let second = |axis| -> Result<Operator, ConstraintError> {
        Ok(Arc::new(FiniteDifference::second(
            grid,
            axis,
            FdScheme::Reference,
        )?))
    };
    let laplacian = LinearCombination::sum(vec![second(1)?, second(2)?])?;
    Ok([
        Arc::new(first(0)?),
        Arc::new(first(1)?),
        Arc::new(first(2)?),
        Arc::new(laplacian),
    ])
}

/// `[w_t, w_x, w_y, Δw]` of the accurate option: spectral in space, the
/// second-order stencil in time.
fn spectral_derivatives(grid: &Grid) -> Result<[Operator; 4], ConstraintError> {
    Ok([
        Arc::new(FiniteDifference::first(grid, 0, FdScheme::SecondOrder)?),
        Arc::new(FourierMultiplier::derivative(grid, 1, 1)?),
        Arc::new(FourierMultiplier::derivative(grid, 2, 1)?),
        Arc::new(FourierMultiplier::laplacian(grid)?),
    ])
}

/// The velocity component `±∂ψ/∂(axis)` from the vorticity: the multiplier
/// `sign · i k_axis / |k|²` over the grid's last two axes (its space axes,
/// after time where the grid has it), zero on the mean.
pub(crate) fn velocity(
    grid: &Grid,
    axis: usize,
    sign: f64,
) -> Result<FourierMultiplier, MeshError> {
    let space = [grid.ndim().saturating_sub(2), grid.ndim().saturating_sub(1)];
    let along = axis.saturating_sub(space[0]);
    FourierMultiplier::new(grid, &space, move |k| {
        let k2 = k[0] * k[0] + k[1] * k[1];
        if k2 == 0.0 {
            Complex64::new(0.0, 0.0)
        } else {
            Complex64::new(0.0, sign * k[along] / k2)
        }
    })
}

impl Pde for NavierStokes {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        Self::check_grid(grid)?;
        let [w_t, w_x, w_y, lap_w] = match self.derivatives {
            Derivatives::Reference => reference_derivatives(grid)?,
            Derivatives::Spectral => spectral_derivatives(grid)?,
        };
        // v = (∂_y ψ, −∂_x ψ) with ψ = −Δ⁻¹ w: v̂_x = i k_y ŵ/|k|², v̂_y = −i k_x ŵ/|k|².
        let v_x: Operator = Arc::new(velocity(grid, 2, 1.0)?);
        let v_y: Operator = Arc::new(velocity(grid, 1, -1.0)?);
        let named = [
            ("w_t", w_t),
            ("v_x", v_x),
            ("v_y", v_y),
            ("w_x", w_x),
            ("w_y", w_y),
            ("Δw", lap_w),
        ];
        Ok(named
            .into_iter()
            .map(|(name, operator)| Term {
                name: name.to_owned(),
                operator,
            })
            .collect())
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], _: &[f64], out: &mut [D]) {
        let advection = z[Self::V_X] * z[Self::W_X] + z[Self::V_Y] * z[Self::W_Y];
        out[0] = z[Self::W_T] + advection - z[Self::LAP_W] * self.nu;
    }

    /// None: the model form enforces the initial condition exactly. Still checks
    /// that `ic` is a finite `[x, y]` field, as every PDE does.
    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        Self::check_grid(grid)?;
        Self::check_ic(grid, ic)?;
        Ok(Vec::new())
    }

    /// `S = (remove the spatial mean per time level) ∘ (scale by 0.005·t/T)`, `T`
    /// the last time coordinate (the reference divides by `t[-1]`), as one
    /// [`CenterScale`].
    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        Self::check_grid(grid)?;
        let t = grid.axis(0).coords();
        let t_end = t[t.len() - 1];
        if t_end <= 0.0 {
            return Err(ConstraintError::InvalidValue {
                what: "final time of the Navier-Stokes grid",
                value: t_end,
                reason: "the mollifier 0.005·t/T needs T > 0",
            });
        }
        let profile: Vec<f64> = t.iter().map(|t| MOLLIFIER_SCALE * t / t_end).collect();
        let map = CenterScale::new(grid.shape(), 1, true, Some(profile))?;
        Ok(Some(Arc::new(map)))
    }

    /// The initial condition broadcast over every time level.
    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        Self::check_grid(grid)?;
        Self::check_ic(grid, ic)?;
        let nt = grid.shape().dims()[0];
        Ok(Some(ic.repeat(nt)))
    }

    /// `ic` enters only as the offset repeated over time: its cotangent is
    /// the offset's summed over time levels.
    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        check_cotangents(self, grid, ic, rows, offset)?;
        Ok(sum_repeats(offset.unwrap_or_default(), ic.len()))
    }
}
