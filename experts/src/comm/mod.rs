//! The communicator: the one interface through which ranks exchange data, so
//! the trainer (data-parallel gradient all-reduce) and the constraint layer
//! (expert-parallel tile exchange) never know which transport runs.
//!
//! - [`Local`]: one process, the default build and most tests;
//! - `Mpi` (cargo feature `mpi`): Open MPI / MPICH through the `mpi` crate;
//! - [`Threads`]: several ranks as threads of one process (multi-rank tests
//!   without MPI);
//! - `Nccl` (cargo feature `nccl`): one GPU per rank, the data moving between
//!   GPUs over NVIDIA's collective library, another communicator (MPI) only
//!   starting it;
//! - [`Metered`]: another communicator, with the time and bytes it moves
//!   counted (for benchmarks).
//!
//! The trait asks only for a variable all-to-all, a byte broadcast, a gather,
//! a barrier and an abort; the all-reduce is built on the all-to-all here, so
//! every implementation sums in the same order and gives the same bits.
//!
//! The trait needs neither `Send` nor `Sync`: an MPI communicator belongs to the
//! thread that initialised MPI, so collectives are called from the main thread,
//! outside rayon closures, while rayon keeps doing the compute inside each rank.
//! Every call is collective: all ranks make the same calls in the same order.

mod error;
mod local;
mod metered;
#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "nccl")]
mod nccl;
mod reduce;
mod threads;

pub use self::error::CommError;
pub use self::local::Local;
pub use self::metered::{Metered, Traffic};
#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
#[cfg(feature = "nccl")]
pub use self::nccl::{Nccl, nccl_version};
pub use self::reduce::bucket_ranges;
pub use self::threads::Threads;

/// Collective operations over a fixed set of ranks `0..size()`.
pub trait Communicator {
    /// This process's rank.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// Variable all-to-all: `send[r]` goes to rank `r` (`send.len() == size()`);
    /// returns what each rank sent to this one, indexed by source rank.
    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError>;

    /// Replaces `bytes` on every rank with `root`'s (lengths may differ before).
    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CommError>;

    /// Every rank's `values` (lengths may differ), indexed by rank, on `root`;
    /// `None` on the other ranks.
    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<(), CommError>;

    /// Ends every rank of the job at once with exit code `code`, after writing
    /// `reason` (prefixed with this rank) to stderr. Used from error paths and
    /// from the panic hook, so a failing rank never leaves the others waiting.
    fn abort(&self, code: i32, reason: &str) -> !;

    /// Element-wise sum of `values` over all ranks, in place, identical on every
    /// rank. Reduce-scatter then all-gather over the fixed buckets of
    /// [`bucket_ranges`]: each element is summed by one rank, in rank order
    /// `((v₀ + v₁) + v₂) + …`, so the result is bit-reproducible for a given
    /// world size whatever the transport, and each rank moves `2 (K−1)/K` of
    /// the vector (the bandwidth-optimal volume).
    fn all_reduce_sum(&self, values: &mut [f64]) -> Result<(), CommError> {
        reduce::all_reduce_sum(self, values)
    }

    /// `root`'s `values` on every rank (lengths may differ before).
    fn broadcast(&self, root: usize, values: &mut Vec<f64>) -> Result<(), CommError> {
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.broadcast_bytes(root, &mut bytes)?;
        *values = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
            .collect();
        Ok(())
    }
}
