//! What the time integrator is asked to do ([`MolOptions`], [`MolMethod`]).

use serde::{Deserialize, Serialize};

use crate::mol::MolError;

/// Which time integrator advances the semi-discrete system.
///
/// Why a choice: the implicit method takes steps the accuracy allows whatever
/// the grid (diffusion, dispersion and hyperdiffusion on a fine grid are
/// stiff), at the price of a Jacobian and linear solves per step; an explicit
/// method costs a handful of right-hand sides per step but its steps are
/// bounded by stability. Transport-dominated flows (nearly inviscid
/// Navier–Stokes) are not stiff, and there the explicit method is several
/// times faster (benches/README.md, "Explicit time stepping").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MolMethod {
    /// The L-stable SDIRK4 method with Newton on `J` ([`crate::mol::sdirk`]).
    #[default]
    Implicit,
    /// The Dormand–Prince 5(4) pair ([`crate::mol::dormand_prince`]): no
    /// Jacobian, steps bounded by stability.
    Explicit,
    /// Dormand–Prince while the steps it takes are set by accuracy; once its
    /// stiffness test finds them bounded by stability, SDIRK4 from the last
    /// output time on (the idea of Shampine's and Petzold's automatic
    /// switching, with Hairer's stiffness test made aware of the eigenvalue's
    /// direction: [`crate::mol::dormand_prince`]).
    Auto,
}

impl MolMethod {
    /// Whether this is the default, [`MolMethod::Implicit`] (a scenario that
    /// does not choose keeps its data cache's name).
    pub fn is_implicit(&self) -> bool {
        *self == Self::Implicit
    }
}

/// Settings of the time integrator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MolOptions {
    /// Relative tolerance of the local error.
    pub rtol: f64,
    /// Absolute tolerance of the local error.
    pub atol: f64,
    /// Step budget over the whole solve.
    pub max_steps: usize,
    /// First step; `None` estimates it from `‖u₀‖/‖f(u₀)‖`.
    pub initial_step: Option<f64>,
    /// A state whose max norm exceeds this is a blow-up.
    pub max_norm: f64,
    /// Constant steps without error control (order measurements); `None` for
    /// adaptive stepping.
    pub fixed_step: Option<f64>,
    /// The time integrator.
    pub method: MolMethod,
}

impl Default for MolOptions {
    fn default() -> Self {
        Self {
            rtol: 1e-6,
            atol: 1e-8,
            max_steps: 100_000,
            initial_step: None,
            max_norm: 1e10,
            fixed_step: None,
            method: MolMethod::Implicit,
        }
    }
}

impl MolOptions {
    pub(crate) fn validate(&self) -> Result<(), MolError> {
        let positive = |what, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(MolError::InvalidValue {
                    what,
                    value,
                    reason: "must be finite and positive",
                })
            }
        };
        positive("rtol", self.rtol)?;
        positive("atol", self.atol)?;
        positive("max_norm", self.max_norm)?;
        if let Some(h) = self.initial_step {
            positive("initial_step", h)?;
        }
        if let Some(h) = self.fixed_step {
            positive("fixed_step", h)?;
        }
        if self.max_steps == 0 {
            return Err(MolError::InvalidValue {
                what: "max_steps",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        Ok(())
    }
}
