//! The error type of the constraint checks.

use tessera_constraints::ConstraintError;
use tessera_experts::ExpertsError;
use tessera_meshes::MeshError;
use tessera_scenarios::ScenarioError;

/// Errors from setting up or running a gradient check or benchmark.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A setting is out of its valid range.
    #[error("invalid {what} = {value}: {reason}")]
    InvalidSetting {
        /// The setting (as the CLI flag names it).
        what: &'static str,
        /// The value given.
        value: String,
        /// The valid range.
        reason: &'static str,
    },
    /// An expert layer error (split, points, shapes, a failed expert).
    #[error(transparent)]
    Experts(#[from] ExpertsError),
    /// A PDE definition or solver-setting error.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// A scenario error (PDE constants, grids).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A grid error.
    #[error(transparent)]
    Mesh(#[from] MeshError),
}
