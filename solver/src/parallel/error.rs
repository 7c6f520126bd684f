//! Errors of multi-rank runs.

use tessera_experts::comm::CommError;

/// A multi-rank run cannot start or continue.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParallelError {
    /// Launched by `mpirun`/`srun` with several ranks, but built without MPI:
    /// the ranks would be independent runs racing on one run directory.
    #[error(
        "launched by {launcher} as one of {size} ranks, but this binary was built without MPI; rebuild with `cargo build --release --features mpi` (needs the MPI development files and libclang), or run without a launcher"
    )]
    NeedsMpiFeature { launcher: &'static str, size: usize },
    /// The launcher's environment variable could not be read as a size.
    #[error("{variable} = {value:?} is not a number of ranks")]
    BadLauncherEnv {
        variable: &'static str,
        value: String,
    },
    /// MPI's world differs from what the launcher declared.
    #[error("{launcher} declares {declared} ranks but MPI's world has {actual}")]
    WorldMismatch {
        launcher: &'static str,
        declared: usize,
        actual: usize,
    },
    /// The `[parallel]` sizes do not fit the world or the scenario.
    #[error("[parallel] data = {data}, experts = {experts} on {world} ranks: {reason}")]
    Layout {
        world: usize,
        data: String,
        experts: String,
        reason: String,
    },
    /// The model cannot split a batch over ranks.
    #[error("this model does not support data-parallel training")]
    DataParallelUnsupported,
    /// The ranks' parameters are no longer identical.
    #[error(
        "after step {step} the parameters of rank(s) {ranks:?} differ from rank 0's: the ranks diverged"
    )]
    Diverged { step: usize, ranks: Vec<usize> },
    /// A collective failed.
    #[error(transparent)]
    Comm(#[from] CommError),
}
