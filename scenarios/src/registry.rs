//! The PDE registry: one type for every scenario PDE, so that code choosing the
//! PDE at run time (a scenario file, a problem file, a command-line flag) calls
//! the generic constraint layer once instead of once per PDE, and one place that
//! maps a PDE to its name and constants and back.
//!
//! **Metadata.** A PDE written into a file (the experts' problem files) is
//! described by string entries: `pde` (the name), `pde.constants` (its
//! `[pde]` table of a scenario file, as JSON: `{"kind": …, "D": …}`) and
//! `pde.fd` (the derivative stencils, `reference` or `second-order`, as the
//! scenario key `constraint.fd`). [`AnyPde::from_metadata`] reads them back
//! through the same validating constructors as a scenario file.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use num_dual::DualNum;
use tessera_constraints::{ConstraintError, InitialGuess, LinearRow, LinearRowBar, Pde, Term};
use tessera_meshes::ops::fd::FdScheme;
use tessera_meshes::{Grid, LinearOperator};

use crate::ScenarioError;
use crate::advection::Advection;
use crate::config::{FdStencils, PdeConfig};
use crate::custom::CustomPde;
use crate::diffusion_sorption::pde::DiffusionSorption;
use crate::heat::Heat;
use crate::navier_stokes::pde::{Derivatives, NavierStokes};

/// Metadata key of the PDE's name.
pub const META_PDE: &str = "pde";
/// Metadata key of the PDE's constants (JSON).
pub const META_CONSTANTS: &str = "pde.constants";
/// Metadata key of the derivative stencils.
pub const META_FD: &str = "pde.fd";

/// The PDEs known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Every kind, in the order help texts list them.
    pub const ALL: [Self; 4] = [
        Self::DiffusionSorption,
        Self::NavierStokes,
        Self::Heat,
        Self::Advection,
    ];

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
        Self::ALL.into_iter().find(|k| k.name() == name)
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

    /// Whether each grid axis `(t, x, (y))` is periodic for this PDE.
    pub fn periodic_axes(&self) -> Vec<bool> {
        match self {
            Self::Custom(pde) => pde.periodic_axes().to_vec(),
            _ => self.kind().map(PdeKind::periodic_axes).unwrap_or_default(),
        }
    }

    /// The PDE a scenario's `[pde]` table and `constraint.fd` describe. For
    /// Navier–Stokes `second-order` selects the spectral operators, its accurate
    /// alternative; advection has one fixed scheme.
    ///
    /// Errors: a constant out of its range (each PDE's constructor); a
    /// malformed custom definition.
    pub fn from_config(pde: &PdeConfig, fd: FdStencils) -> Result<Self, ScenarioError> {
        let scheme = match fd {
            FdStencils::Reference => FdScheme::Reference,
            FdStencils::SecondOrder => FdScheme::SecondOrder,
        };
        Ok(match pde {
            PdeConfig::DiffusionSorption(p) => {
                Self::DiffusionSorption(DiffusionSorption::new(*p, scheme)?)
            }
            PdeConfig::NavierStokes(p) => {
                let derivatives = match fd {
                    FdStencils::Reference => Derivatives::Reference,
                    FdStencils::SecondOrder => Derivatives::Spectral,
                };
                Self::NavierStokes(NavierStokes::new(*p, derivatives)?)
            }
            PdeConfig::Heat(p) => Self::Heat(Heat::new(p.kappa, scheme)?),
            PdeConfig::Advection(p) => Self::Advection(Advection::new(p.speed)?),
            // A definition names its own stencils, term by term.
            PdeConfig::Custom(p) => Self::Custom(Arc::new(p.pde("[pde]")?)),
        })
    }

    /// The `[pde]` table and `constraint.fd` that build this PDE with
    /// [`AnyPde::from_config`] (the inverse; advection reports the default
    /// stencils, which it ignores); `None` for a PDE defined in TOML, whose
    /// definition file is its configuration.
    pub fn config(&self) -> Option<(PdeConfig, FdStencils)> {
        let stencils = |scheme: FdScheme| match scheme {
            FdScheme::SecondOrder => FdStencils::SecondOrder,
            // The constructors reject periodic stencils for these PDEs.
            FdScheme::Reference | FdScheme::Periodic => FdStencils::Reference,
        };
        Some(match self {
            Self::DiffusionSorption(p) => {
                (PdeConfig::DiffusionSorption(*p.params()), stencils(p.fd()))
            }
            Self::NavierStokes(p) => {
                let fd = match p.derivatives() {
                    Derivatives::Reference => FdStencils::Reference,
                    Derivatives::Spectral => FdStencils::SecondOrder,
                };
                let params = crate::config::NavierStokesParams { nu: p.nu() };
                (PdeConfig::NavierStokes(params), fd)
            }
            Self::Heat(p) => {
                let params = crate::config::HeatParams { kappa: p.kappa() };
                (PdeConfig::Heat(params), stencils(p.fd()))
            }
            Self::Advection(p) => {
                let params = crate::config::AdvectionParams { speed: p.speed() };
                (PdeConfig::Advection(params), FdStencils::default())
            }
            Self::Custom(_) => return None,
        })
    }

    /// This PDE as metadata entries (see the module docs).
    ///
    /// Errors: [`ScenarioError::ConfigInvalid`] for a PDE defined in TOML, which
    /// has no built-in name to record.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>, ScenarioError> {
        let (Some(kind), Some((config, fd))) = (self.kind(), self.config()) else {
            return Err(ScenarioError::ConfigInvalid {
                origin: "PDE metadata".to_owned(),
                key: META_PDE.to_owned(),
                value: "custom".to_owned(),
                reason: "a PDE defined in TOML cannot be recorded in problem-file metadata"
                    .to_owned(),
            });
        };
        // Plain data with string keys and finite numbers: serialising cannot fail.
        let constants = serde_json::to_string(&config).unwrap_or_default();
        let fd = serde_json::to_value(fd)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(BTreeMap::from([
            (META_PDE.to_owned(), kind.name().to_owned()),
            (META_CONSTANTS.to_owned(), constants),
            (META_FD.to_owned(), fd),
        ]))
    }

    /// The PDE that metadata entries describe (see the module docs); keys not
    /// starting with `pde` are ignored. Without `pde.constants` the kind's
    /// default constants are used, without `pde.fd` the reference stencils.
    /// Diffusion–sorption constants without `boundary` take the face rows (the
    /// default); metadata written before that key existed meant cell centres.
    ///
    /// Errors ([`ScenarioError::ConfigInvalid`] or the constructors' own): no
    /// or an unknown `pde`, constants that are not a `[pde]` table, constants of
    /// another kind than `pde` names, an unknown `pde.fd`, a constant out of range.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<Self, ScenarioError> {
        let invalid = |key: &str, value: &str, reason: &str| ScenarioError::ConfigInvalid {
            origin: "PDE metadata".to_owned(),
            key: key.to_owned(),
            value: format!("{value:?}"),
            reason: reason.to_owned(),
        };
        let name = metadata.get(META_PDE).map_or("", String::as_str);
        let kind: PdeKind = name.parse()?;
        let config = match metadata.get(META_CONSTANTS) {
            None => Self::default_of(kind)
                .config()
                .map(|(config, _)| config)
                .ok_or_else(|| invalid(META_PDE, name, "not a built-in PDE"))?,
            Some(text) => {
                let config: PdeConfig = serde_json::from_str(text)
                    .map_err(|e| invalid(META_CONSTANTS, text, &e.to_string()))?;
                if config.kind() != name {
                    return Err(invalid(
                        META_CONSTANTS,
                        text,
                        &format!("constants of {}, but `pde` is {name}", config.kind()),
                    ));
                }
                config
            }
        };
        let fd = match metadata.get(META_FD) {
            None => FdStencils::Reference,
            Some(text) => serde_json::from_value(serde_json::Value::String(text.clone()))
                .map_err(|_| invalid(META_FD, text, "reference or second-order"))?,
        };
        Self::from_config(&config, fd)
    }
}

impl FromStr for PdeKind {
    type Err = ScenarioError;

    /// The kind called `name` (see [`PdeKind::name`]).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| ScenarioError::ConfigInvalid {
            origin: "PDE name".to_owned(),
            key: META_PDE.to_owned(),
            value: format!("{name:?}"),
            reason: format!("one of {}", Self::ALL.map(Self::name).join(", ")),
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

    fn uses_coordinates(&self) -> bool {
        forward!(self, p => p.uses_coordinates())
    }

    fn residual<D: DualNum<Primitive = f64> + Copy>(&self, z: &[D], coords: &[f64], out: &mut [D]) {
        forward!(self, p => p.residual(z, coords, out))
    }

    // The block methods are forwarded too: a defined PDE's are its block
    // evaluator, which the defaults here would bypass.
    fn residual_values_block(&self, d: usize, z: &[f64], coords: &[f64], values: &mut [f64]) {
        forward!(self, p => p.residual_values_block(d, z, coords, values))
    }

    fn residual_gradients_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
    ) {
        forward!(self, p => p.residual_gradients_block(d, z, coords, values, grads))
    }

    fn residual_hessians_block(
        &self,
        d: usize,
        z: &[f64],
        coords: &[f64],
        values: &mut [f64],
        grads: &mut [f64],
        hessians: &mut [f64],
    ) {
        forward!(self, p => p.residual_hessians_block(d, z, coords, values, grads, hessians))
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

    fn initial_condition_backward(
        &self,
        grid: &Grid,
        ic: &[f64],
        rows: &[LinearRowBar],
        offset: Option<&[f64]>,
    ) -> Result<Vec<f64>, ConstraintError> {
        forward!(self, p => p.initial_condition_backward(grid, ic, rows, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        AdvectionParams, BoundaryPlacement, DiffusionSorptionParams, HeatParams, NavierStokesParams,
    };

    /// Every kind with constants and stencils off their defaults.
    fn non_default() -> Vec<AnyPde> {
        let ds = DiffusionSorptionParams {
            d: 4e-4,
            phi: 0.3,
            boundary: BoundaryPlacement::CellCentres,
            ..DiffusionSorptionParams::default()
        };
        [
            (PdeConfig::DiffusionSorption(ds), FdStencils::SecondOrder),
            (
                PdeConfig::NavierStokes(NavierStokesParams { nu: 1e-3 }),
                FdStencils::SecondOrder,
            ),
            (
                PdeConfig::Heat(HeatParams { kappa: 0.25 }),
                FdStencils::Reference,
            ),
            (
                PdeConfig::Advection(AdvectionParams { speed: -0.5 }),
                FdStencils::Reference,
            ),
        ]
        .iter()
        .map(|(config, fd)| AnyPde::from_config(config, *fd).unwrap())
        .collect()
    }

    #[test]
    fn metadata_round_trips_every_kind() {
        for pde in non_default() {
            assert_ne!(pde, AnyPde::default_of(pde.kind().unwrap()));
            assert_eq!(
                AnyPde::from_metadata(&pde.metadata().unwrap()).unwrap(),
                pde
            );
            let (config, fd) = pde.config().unwrap();
            assert_eq!(AnyPde::from_config(&config, fd).unwrap(), pde);
        }
        for kind in PdeKind::ALL {
            assert_eq!(kind.name().parse::<PdeKind>().unwrap(), kind);
        }
    }

    #[test]
    fn inconsistent_metadata_is_rejected() {
        let pde = non_default()[0].clone();
        let edited = |key: &str, value: &str| {
            let mut metadata = pde.metadata().unwrap();
            metadata.insert(key.to_owned(), value.to_owned());
            AnyPde::from_metadata(&metadata)
        };
        assert!(
            edited(META_PDE, "heat").is_err(),
            "constants of another kind"
        );
        assert!(edited(META_PDE, "wave").is_err(), "unknown kind");
        assert!(edited(META_FD, "fourth-order").is_err());
        assert!(edited(META_CONSTANTS, "{").is_err());
        let negative = r#"{"kind":"diffusion-sorption","D":-1.0}"#;
        assert!(matches!(
            edited(META_CONSTANTS, negative),
            Err(ScenarioError::InvalidValue { .. })
        ));
        let only_name = BTreeMap::from([(META_PDE.to_owned(), "heat".to_owned())]);
        assert_eq!(
            AnyPde::from_metadata(&only_name).unwrap().kind(),
            Some(PdeKind::Heat)
        );
    }
}
