//! The catalogue of term operators a definition may name, with their stencils,
//! built on the `meshes` operators the built-in PDEs use.
//!
//! | `op` | operator | stencils |
//! |---|---|---|
//! | `u` | identity | — |
//! | `dt` | `∂t` | `reference`, `second-order` |
//! | `dx`, `dy` | `∂x`, `∂y` | `reference`, `second-order`, `periodic`, `spectral` |
//! | `dxx`, `dyy` | `∂xx`, `∂yy` | as `dx` |
//! | `laplacian` | `∂xx (+ ∂yy)` | as `dx` |
//! | `dxy` | `∂x∂y` (2-D) | as `dx`: the product of the two axes' first-derivative stencils, or the multiplier `(i k_x)(i k_y)` |
//! | `dxxx`, `dxxxx`, `dyyy`, `dyyyy` | `∂³`, `∂⁴` along x or y (KdV, Kuramoto–Sivashinsky) | `spectral` only |
//! | `velocity-x`, `velocity-y` | `v = (∂y ψ, −∂x ψ)`, `−Δψ = u` (Navier–Stokes velocity from vorticity) | spectral only |
//!
//! `periodic` (wrapping central differences) and `spectral` need a periodic axis.
//! Third and fourth derivatives are spectral only: the equations that have
//! them are posed on periodic domains and solved spectrally (the Fourier
//! multiplier `(ik)³`, `k⁴`), and a difference stencil of their order would
//! need boundary closures wider than the ghost layer the method of lines keeps.

use std::sync::Arc;

use tessera_constraints::ConstraintError;
use tessera_meshes::ops::combination::LinearCombination;
use tessera_meshes::ops::compose::Compose;
use tessera_meshes::ops::fd::{FdScheme, FiniteDifference};
use tessera_meshes::ops::identity::Identity;
use tessera_meshes::ops::spectral::FourierMultiplier;
use tessera_meshes::{Grid, LinearOperator};

use crate::navier_stokes::pde::velocity;

/// A term operator (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `u` itself.
    U,
    /// `∂t`.
    Dt,
    /// `∂/∂(space axis)`, axis 1 = x, 2 = y of the grid.
    First(usize),
    /// `∂²/∂(space axis)²`.
    Second(usize),
    /// `∂³/∂(space axis)³`.
    Third(usize),
    /// `∂⁴/∂(space axis)⁴`.
    Fourth(usize),
    /// The Laplacian over all space axes.
    Laplacian,
    /// The mixed derivative `∂x∂y` (2-D grids).
    Mixed,
    /// Velocity component `axis` (1 = x, 2 = y) from the vorticity.
    Velocity(usize),
}

/// A stencil choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stencil {
    /// `numpy.gradient(edge_order=1)`, as in the paper's code.
    Reference,
    /// Second order everywhere.
    SecondOrder,
    /// Wrapping central differences.
    Periodic,
    /// Fourier multipliers.
    Spectral,
}

impl Operator {
    /// The operator named `name` for `space_dims` space axes.
    pub fn from_name(name: &str, space_dims: usize) -> Option<Self> {
        let op = match name {
            "u" => Self::U,
            "dt" => Self::Dt,
            "dx" => Self::First(1),
            "dy" => Self::First(2),
            "dxx" => Self::Second(1),
            "dyy" => Self::Second(2),
            "dxxx" => Self::Third(1),
            "dyyy" => Self::Third(2),
            "dxxxx" => Self::Fourth(1),
            "dyyyy" => Self::Fourth(2),
            "laplacian" => Self::Laplacian,
            "dxy" => Self::Mixed,
            "velocity-x" => Self::Velocity(1),
            "velocity-y" => Self::Velocity(2),
            _ => return None,
        };
        let axis_ok = match op {
            Self::First(a) | Self::Second(a) | Self::Third(a) | Self::Fourth(a) => a <= space_dims,
            Self::Velocity(_) | Self::Mixed => space_dims == 2,
            _ => true,
        };
        axis_ok.then_some(op)
    }

    /// The grid axes the operator differentiates along (none for `u` and the
    /// velocity, which is not a derivative of `u`), and the derivative order
    /// along each (1 for `∂x∂y`, as a boundary row at one end of each axis
    /// determines it).
    pub fn derivative_axes(self, space_dims: usize) -> (Vec<usize>, usize) {
        match self {
            Self::U | Self::Velocity(_) => (Vec::new(), 0),
            Self::Dt => (vec![0], 1),
            Self::First(a) => (vec![a], 1),
            Self::Second(a) => (vec![a], 2),
            Self::Third(a) => (vec![a], 3),
            Self::Fourth(a) => (vec![a], 4),
            Self::Laplacian => ((1..=space_dims).collect(), 2),
            Self::Mixed => (vec![1, 2], 1),
        }
    }

    /// Whether `stencil` applies, given which grid axes are periodic (`periodic[0]`
    /// is `t`). `Err` says why not.
    pub fn check_stencil(self, stencil: Stencil, periodic: &[bool]) -> Result<(), String> {
        let (axes, _) = self.derivative_axes(periodic.len() - 1);
        if let Self::Velocity(_) = self {
            return if periodic[1..].iter().all(|&p| p) {
                Ok(())
            } else {
                Err("the velocity from the vorticity needs periodic space axes".into())
            };
        }
        if matches!(self, Self::Third(_) | Self::Fourth(_)) && stencil != Stencil::Spectral {
            return Err(
                "third and fourth derivatives take only the `spectral` stencil (periodic axes)"
                    .into(),
            );
        }
        let needs_periodic = matches!(stencil, Stencil::Periodic | Stencil::Spectral);
        match axes.iter().find(|&&a| needs_periodic && !periodic[a]) {
            Some(0) => {
                Err("the t axis takes only the `reference` and `second-order` stencils".into())
            }
            Some(&a) => Err(format!(
                "stencil needs a periodic axis; space axis {a} is bounded (set `periodic`)"
            )),
            None => Ok(()),
        }
    }

    /// The operator on `grid`.
    pub fn build(
        self,
        grid: &Grid,
        stencil: Stencil,
    ) -> Result<Arc<dyn LinearOperator>, ConstraintError> {
        let fd = |order: usize, axis: usize| -> Result<Arc<dyn LinearOperator>, ConstraintError> {
            let scheme = match stencil {
                Stencil::Reference => FdScheme::Reference,
                Stencil::SecondOrder => FdScheme::SecondOrder,
                Stencil::Periodic => FdScheme::Periodic,
                Stencil::Spectral => {
                    let order = u32::try_from(order).unwrap_or(1);
                    return Ok(Arc::new(FourierMultiplier::derivative(grid, axis, order)?));
                }
            };
            match order {
                1 => Ok(Arc::new(FiniteDifference::first(grid, axis, scheme)?)),
                2 => Ok(Arc::new(FiniteDifference::second(grid, axis, scheme)?)),
                _ => Err(ConstraintError::InvalidValue {
                    what: "derivative order of a difference stencil",
                    value: order as f64,
                    reason: "third and fourth derivatives take only the spectral stencil",
                }),
            }
        };
        match self {
            Self::U => Ok(Arc::new(Identity::new(grid.shape()))),
            Self::Dt => fd(1, 0),
            Self::First(a) => fd(1, a),
            Self::Second(a) => fd(2, a),
            Self::Third(a) => fd(3, a),
            Self::Fourth(a) => fd(4, a),
            Self::Laplacian if stencil == Stencil::Spectral => {
                Ok(Arc::new(FourierMultiplier::laplacian(grid)?))
            }
            Self::Laplacian if grid.ndim() == 2 => fd(2, 1),
            Self::Laplacian => {
                let parts = (1..grid.ndim())
                    .map(|a| fd(2, a))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(LinearCombination::sum(parts)?))
            }
            Self::Mixed if stencil == Stencil::Spectral => Ok(Arc::new(
                FourierMultiplier::partial(grid, &[(1, 1), (2, 1)])?,
            )),
            Self::Mixed => Ok(Arc::new(Compose::new(vec![fd(1, 1)?, fd(1, 2)?])?)),
            // v = (∂_y ψ, −∂_x ψ): v̂_x = i k_y ŵ/|k|², v̂_y = −i k_x ŵ/|k|².
            Self::Velocity(1) => Ok(Arc::new(velocity(grid, 2, 1.0)?)),
            Self::Velocity(_) => Ok(Arc::new(velocity(grid, 1, -1.0)?)),
        }
    }
}

impl Stencil {
    /// The stencil named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "reference" => Self::Reference,
            "second-order" => Self::SecondOrder,
            "periodic" => Self::Periodic,
            "spectral" => Self::Spectral,
            _ => return None,
        })
    }
}
