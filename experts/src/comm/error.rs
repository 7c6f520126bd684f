//! Errors of the communicator.

/// A collective failed or was called with inconsistent arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommError {
    /// A rank argument outside `0..size`.
    #[error("rank {rank} does not exist in a world of {size}")]
    NoSuchRank { rank: usize, size: usize },
    /// A per-rank argument with the wrong number of entries.
    #[error("{what}: expected one entry per rank ({size}), got {got}")]
    PerRank {
        what: &'static str,
        size: usize,
        got: usize,
    },
    /// Ranks disagree about a size that must be equal everywhere.
    #[error("{what}: rank {rank} has {got}, rank 0 has {expected}")]
    Inconsistent {
        what: &'static str,
        rank: usize,
        expected: usize,
        got: usize,
    },
    /// The transport itself failed.
    #[error("{op} failed: {reason}")]
    Transport { op: &'static str, reason: String },
}
