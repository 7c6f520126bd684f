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
//! | `dxxy`, `dxyy`, `dxxxy`, `dxxyy`, `dxyyy` | mixed `∂x^p ∂y^q` of order 3 and 4 (2-D; Zakharov–Kuznetsov, the biharmonic `Δ²`) | `spectral` only: the multiplier `(i k_x)^p (i k_y)^q` |
//! | `velocity-x`, `velocity-y` | `v = (∂y ψ, −∂x ψ)`, `−Δψ = u` (Navier–Stokes velocity from vorticity) | spectral only |
//!
//! A derivative's name is `d` followed by its axes' letters, x before y, at
//! most four of them. `periodic` (wrapping central differences) and
//! `spectral` need a periodic axis. Third and fourth derivatives (mixed ones
//! included) are spectral only: the equations that have them are posed on
//! periodic domains and solved spectrally (the Fourier multiplier `(ik)³`,
//! `k⁴`), and a difference stencil of their order would need boundary
//! closures wider than the ghost layer the method of lines keeps.

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
    /// The mixed derivative `∂x^p ∂y^q` (2-D grids, `p, q ≥ 1`, `p + q ≤ 4`),
    /// as `(p, q)`.
    Mixed(u32, u32),
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
            "laplacian" => Self::Laplacian,
            "velocity-x" => Self::Velocity(1),
            "velocity-y" => Self::Velocity(2),
            _ => Self::derivative_named(name)?,
        };
        let axis_ok = match op {
            Self::First(a) | Self::Second(a) | Self::Third(a) | Self::Fourth(a) => a <= space_dims,
            Self::Velocity(_) | Self::Mixed(..) => space_dims == 2,
            _ => true,
        };
        axis_ok.then_some(op)
    }

    /// A space derivative's name, `d` then one letter per order along its
    /// axes, x before y (`dx`, `dyyy`, `dxxy`), of order one to four.
    fn derivative_named(name: &str) -> Option<Self> {
        let letters = name.strip_prefix('d')?;
        let p = letters.len() - letters.trim_start_matches('x').len();
        let q = letters[p..].len();
        if letters[p..].bytes().any(|b| b != b'y') || !(1..=4).contains(&(p + q)) {
            return None;
        }
        let one_axis = |axis, order| match order {
            1 => Self::First(axis),
            2 => Self::Second(axis),
            3 => Self::Third(axis),
            _ => Self::Fourth(axis),
        };
        Some(match (p, q) {
            (p, 0) => one_axis(1, p),
            (0, q) => one_axis(2, q),
            // p + q ≤ 4 keeps both small.
            (p, q) => Self::Mixed(p as u32, q as u32),
        })
    }

    /// The grid axes the operator differentiates along and the order along
    /// each (none for `u` and the velocity, which is not a derivative of `u`).
    pub fn derivative_axes(self, space_dims: usize) -> Vec<(usize, usize)> {
        match self {
            Self::U | Self::Velocity(_) => Vec::new(),
            Self::Dt => vec![(0, 1)],
            Self::First(a) => vec![(a, 1)],
            Self::Second(a) => vec![(a, 2)],
            Self::Third(a) => vec![(a, 3)],
            Self::Fourth(a) => vec![(a, 4)],
            Self::Laplacian => (1..=space_dims).map(|a| (a, 2)).collect(),
            Self::Mixed(p, q) => vec![(1, p as usize), (2, q as usize)],
        }
    }

    /// Whether `stencil` applies, given which grid axes are periodic (`periodic[0]`
    /// is `t`). `Err` says why not.
    pub fn check_stencil(self, stencil: Stencil, periodic: &[bool]) -> Result<(), String> {
        let axes = self.derivative_axes(periodic.len() - 1);
        if let Self::Velocity(_) = self {
            return if periodic[1..].iter().all(|&p| p) {
                Ok(())
            } else {
                Err("the velocity from the vorticity needs periodic space axes".into())
            };
        }
        let order: usize = match self {
            Self::Laplacian => 2,
            _ => axes.iter().map(|&(_, k)| k).sum(),
        };
        if order > 2 && stencil != Stencil::Spectral {
            return Err(
                "third and fourth derivatives take only the `spectral` stencil (periodic axes)"
                    .into(),
            );
        }
        let needs_periodic = matches!(stencil, Stencil::Periodic | Stencil::Spectral);
        match axes.iter().find(|&&(a, _)| needs_periodic && !periodic[a]) {
            Some((0, _)) => {
                Err("the t axis takes only the `reference` and `second-order` stencils".into())
            }
            Some(&(a, _)) => Err(format!(
                "stencil needs a periodic axis; space axis {a} is bounded (set `periodic`)"
            )),
            None => Ok(()),
        }
    }

    /// The fewest points each grid axis the operator differentiates along
    /// needs for `stencil`, as `(axis, points)`: a difference stencil's
    /// [`FdScheme::min_points`] for its order along that axis, the bound
    /// [`Operator::build`] meets when it builds the stencil; nothing for
    /// spectral multipliers, which take any periodic axis.
    pub fn min_points(self, stencil: Stencil, space_dims: usize) -> Vec<(usize, usize)> {
        let Some(scheme) = stencil.scheme() else {
            return Vec::new();
        };
        (self.derivative_axes(space_dims).into_iter())
            .map(|(axis, order)| (axis, scheme.min_points(order)))
            .collect()
    }

    /// The operator on `grid`.
    pub fn build(
        self,
        grid: &Grid,
        stencil: Stencil,
    ) -> Result<Arc<dyn LinearOperator>, ConstraintError> {
        let fd = |order: usize, axis: usize| -> Result<Arc<dyn LinearOperator>, ConstraintError> {
            let Some(scheme) = stencil.scheme() else {
                let order = u32::try_from(order).unwrap_or(1);
                return Ok(Arc::new(FourierMultiplier::derivative(grid, axis, order)?));
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
            Self::Mixed(p, q) if stencil == Stencil::Spectral => Ok(Arc::new(
                FourierMultiplier::partial(grid, &[(1, p), (2, q)])?,
            )),
            Self::Mixed(1, 1) => Ok(Arc::new(Compose::new(vec![fd(1, 1)?, fd(1, 2)?])?)),
            // No difference stencil of higher order: `fd` says so.
            Self::Mixed(p, q) => fd((p + q) as usize, 1),
            // v = (∂_y ψ, −∂_x ψ): v̂_x = i k_y ŵ/|k|², v̂_y = −i k_x ŵ/|k|².
            Self::Velocity(1) => Ok(Arc::new(velocity(grid, 2, 1.0)?)),
            Self::Velocity(_) => Ok(Arc::new(velocity(grid, 1, -1.0)?)),
        }
    }
}

impl Stencil {
    /// Every stencil.
    const ALL: [Self; 4] = [
        Self::Reference,
        Self::SecondOrder,
        Self::Periodic,
        Self::Spectral,
    ];

    /// The stencil named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The name a definition writes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::SecondOrder => "second-order",
            Self::Periodic => "periodic",
            Self::Spectral => "spectral",
        }
    }

    /// The difference scheme of a finite-difference stencil; `None` for the
    /// spectral one.
    pub fn scheme(self) -> Option<FdScheme> {
        match self {
            Self::Reference => Some(FdScheme::Reference),
            Self::SecondOrder => Some(FdScheme::SecondOrder),
            Self::Periodic => Some(FdScheme::Periodic),
            Self::Spectral => None,
        }
    }
}
