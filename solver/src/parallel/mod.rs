//! One training run over several processes ("ranks"), launched with `mpirun`
//! or `srun`: how a process finds out it was launched ([`launcher`]), the
//! world it belongs to ([`World`]: the communicator, the panic hook and the
//! abort-on-error path), how the ranks split the work ([`Layout`] from the
//! scenario's `[parallel]` table), and the data-parallel pieces the trainer
//! uses ([`DataShard`]: each rank's share of the batch, the gathered fields,
//! the gradient all-reduce and the parameter-hash check). With the `cuda`
//! feature, `gpu_ordinal` says which GPU a rank uses: one per local rank.
//!
//! Without a launcher everything here degenerates to one rank ([`World::local`])
//! and the run is exactly the single-process one.

mod error;
#[cfg(feature = "cuda")]
mod gpu;
pub mod launcher;
mod layout;
mod shard;
mod transfer;
mod world;

pub use self::error::ParallelError;
#[cfg(feature = "cuda")]
pub use self::gpu::gpu_ordinal;
pub use self::launcher::Launcher;
pub use self::layout::Layout;
pub use self::shard::DataShard;
pub use self::transfer::broadcast_run_data;
pub use self::world::{World, with_world};
