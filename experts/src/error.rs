//! The crate's error type.

use tessera_constraints::{ConstraintError, StopReason};
use tessera_meshes::MeshError;

use crate::comm::CommError;

/// Errors from routing and running constraint experts on user input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpertsError {
    /// Array sizes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A count that must be positive is not.
    #[error("{what} must be at least {min}, got {got}")]
    TooSmall {
        what: &'static str,
        min: usize,
        got: usize,
    },
    /// The backward pass was asked for an expert whose forward solve did not
    /// produce usable weights (non-finite data, or a singular system).
    #[error(
        "sample {sample}, expert {expert}: the forward solve stopped with {reason:?}; no gradient exists"
    )]
    ExpertFailed {
        sample: usize,
        expert: usize,
        reason: StopReason,
    },
    /// A given sampled point is outside the grid (`tile` is `None`) or outside its
    /// expert's tile.
    #[error("expert {expert}'s point {point} lies {}", match tile {
        Some(t) => format!("in tile {t}"),
        None => "outside the grid".to_owned(),
    })]
    PointOutsideTile {
        expert: usize,
        point: usize,
        tile: Option<usize>,
    },
    /// An error from building or differentiating one expert's problem.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// An error from the mesh layer (tiles, sampling, operators).
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The GPU solver failed (driver, compilation, a batch it does not take).
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Gpu(#[from] tessera_constraints::gpu::GpuError),
    /// A collective of the expert-parallel exchange failed.
    #[error(transparent)]
    Comm(#[from] CommError),
}
