//! The error type of the tool's own work (the constraint checks and benchmarks,
//! plots); the commands add context with `anyhow` on top.

use std::path::PathBuf;

use tessera_constraints::ConstraintError;
use tessera_experts::ExpertsError;
use tessera_meshes::MeshError;
use tessera_scenarios::ScenarioError;

/// Errors from setting up or running a check, a benchmark or a plot.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
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
    /// Arrays that must agree in size do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// Drawing or encoding a plot failed.
    #[error("plot {}: {source}", path.display())]
    Plot {
        /// The plot's file.
        path: PathBuf,
        /// What plotters (or the data) said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file to be written cannot be, by its name (see
    /// [`crate::output_path::check_output`]).
    #[error("{flag} {}: {reason}", path.display())]
    Output {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An expert layer error (split, points, shapes, a failed expert).
    #[error(transparent)]
    Experts(#[from] ExpertsError),
    /// A PDE definition or solver-setting error.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The chosen device cannot run the job (see `--device`).
    #[error("{0}")]
    Device(String),
    /// The GPU back end failed (driver, kernel compilation, launch).
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Gpu(#[from] tessera_constraints::gpu::GpuError),
    /// A scenario error (PDE constants, grids).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A grid error.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// A run directory's file could not be read.
    #[error(transparent)]
    Solver(#[from] tessera_solver::SolverError),
}

/// `Ok` if `value` of the count `what` (a flag, as the user wrote it) is at
/// least 1: every command refuses a zero count by the flag's name before it
/// builds anything, instead of failing later on a derived setting that the
/// user never wrote.
pub fn at_least_one(what: &'static str, value: usize) -> Result<(), ToolError> {
    if value == 0 {
        return Err(ToolError::InvalidSetting {
            what,
            value: "0".to_owned(),
            reason: "must be at least 1",
        });
    }
    Ok(())
}
