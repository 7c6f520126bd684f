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

impl CommError {
    /// [`CommError::NoSuchRank`] unless `rank` is one of `0..size`.
    pub fn check_rank(rank: usize, size: usize) -> Result<(), CommError> {
        if rank < size {
            Ok(())
        } else {
            Err(CommError::NoSuchRank { rank, size })
        }
    }

    /// [`CommError::PerRank`] unless `got`, the entries of a per-rank
    /// argument, is the world's `size`.
    pub fn check_per_rank(what: &'static str, size: usize, got: usize) -> Result<(), CommError> {
        if got == size {
            Ok(())
        } else {
            Err(CommError::PerRank { what, size, got })
        }
    }
}
