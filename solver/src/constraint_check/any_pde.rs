//! One type for every scenario PDE, so that commands choosing the PDE at run time
//! call the generic constraint layer once instead of once per PDE.

use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, InitialGuess, LinearRow, Pde, Term};
use tessera_meshes::{Grid, LinearOperator};
use tessera_scenarios::advection::Advection;
use tessera_scenarios::custom::CustomPde;
use tessera_scenarios::diffusion_sorption::pde::DiffusionSorption;
use tessera_scenarios::heat::Heat;
use tessera_scenarios::navier_stokes::pde::NavierStokes;

use crate::constraint_check::CheckError;

/// The PDEs the constraint commands know by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PdeKind {
    /// 1-D diffusion–sorption on `(t, x)`.
    DiffusionSorption,
    /// 2-D Navier–Stokes (vorticity) on `(t, x, y)`.
    NavierStokes,
    /// 1-D heat equation (test problem).
    Heat,
    /// 1-D linear advection (test problem).
    Advection,
}

impl PdeKind {
    /// The name as written in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::DiffusionSorption => "diffusion-sorption",
            Self::NavierStokes => "navier-stokes",
            Self::Heat => "heat",
            Self::Advection => "advection",
        }
    }

    /// The kind called `name` (see [`PdeKind::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::DiffusionSorption,
            Self::NavierStokes,
            Self::Heat,
            Self::Advection,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// Number of space dimensions.
    pub fn space_dims(self) -> usize {
        match self {
            Self::NavierStokes => 2,
            _ => 1,
        }
    }

    /// Whether each grid axis `(t, x, (y))` is periodic for this PDE.
    pub fn periodic_axes(self) -> Vec<bool> {
        match self {
            Self::NavierStokes => vec![false, true, true],
            Self::Advection => vec![false, true],
            Self::DiffusionSorption | Self::Heat => vec![false, false],
        }
    }

    /// Where the reference starts Levenberg–Marquardt: `ω₀ = 1` for
    /// diffusion–sorption, `ω₀ = 0` for Navier–Stokes
    /// (`neptune/models/constraints/hard_constraint.py`); ones for the test problems.
    pub fn reference_initial_guess(self) -> InitialGuess {
        match self {
            Self::NavierStokes => InitialGuess::Zeros,
            _ => InitialGuess::Ones,
        }
    }
}

/// Parses a tile split written `1x4` or `1x2x2` (tiles along `t`, `x`, `(y)`).
///
/// Errors: an empty part or one that is not a positive integer.
pub fn parse_split(text: &str) -> Result<Vec<usize>, CheckError> {
    text.split('x')
        .map(|part| match part.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(CheckError::InvalidSetting {
                what: "tile split",
                value: text.to_owned(),
                reason: "positive integers joined by 'x', e.g. 1x4 or 1x2x2",
            }),
        })
        .collect()
}

/// A scenario PDE chosen at run time; every [`Pde`] method forwards to it.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyPde {
    /// Diffusion–sorption.
    DiffusionSorption(DiffusionSorption),
    /// Navier–Stokes.
    NavierStokes(NavierStokes),
    /// Heat.
    Heat(Heat),
    /// Advection.
    Advection(Advection),
    /// A PDE defined in TOML.
    Custom(Arc<CustomPde>),
}

/// Forwards one expression to whichever PDE `$self` holds.
macro_rules! forward {
    ($self:expr, $pde:ident => $call:expr) => {
        match $self {
            AnyPde::DiffusionSorption($pde) => $call,
            AnyPde::NavierStokes($pde) => $call,
            AnyPde::Heat($pde) => $call,
            AnyPde::Advection($pde) => $call,
            AnyPde::Custom($pde) => $call,
        }
    };
}

impl AnyPde {
    /// The PDE of `kind` with its default (paper) constants and the reference's
    /// derivative operators (the test problems: their defaults).
    pub fn default_of(kind: PdeKind) -> Self {
        match kind {
            PdeKind::DiffusionSorption => Self::DiffusionSorption(DiffusionSorption::default()),
            PdeKind::NavierStokes => Self::NavierStokes(NavierStokes::default()),
            PdeKind::Heat => Self::Heat(Heat::default()),
            PdeKind::Advection => Self::Advection(Advection::default()),
        }
    }

    /// Which built-in PDE this is (`None` for a PDE defined in TOML).
    pub fn kind(&self) -> Option<PdeKind> {
        Some(match self {
            Self::DiffusionSorption(_) => PdeKind::DiffusionSorption,
            Self::NavierStokes(_) => PdeKind::NavierStokes,
            Self::Heat(_) => PdeKind::Heat,
            Self::Advection(_) => PdeKind::Advection,
            Self::Custom(_) => return None,
        })
    }
}

impl Pde for AnyPde {
    fn terms(&self, grid: &Grid) -> Result<Vec<Term>, ConstraintError> {
        forward!(self, p => p.terms(grid))
    }

    fn n_equations(&self) -> usize {
        forward!(self, p => p.n_equations())
    }

    fn residual_terms(&self) -> Option<usize> {
        forward!(self, p => p.residual_terms())
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], out: &mut [D]) {
        forward!(self, p => p.residual(z, out))
    }

    fn linear_rows(&self, grid: &Grid, ic: &[f64]) -> Result<Vec<LinearRow>, ConstraintError> {
        forward!(self, p => p.linear_rows(grid, ic))
    }

    fn solution_map(
        &self,
        grid: &Grid,
    ) -> Result<Option<Arc<dyn LinearOperator>>, ConstraintError> {
        forward!(self, p => p.solution_map(grid))
    }

    fn solution_offset(
        &self,
        grid: &Grid,
        ic: &[f64],
    ) -> Result<Option<Vec<f64>>, ConstraintError> {
        forward!(self, p => p.solution_offset(grid, ic))
    }
}
