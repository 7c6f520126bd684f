//! The number of worker threads of handles created from now on.

use std::sync::atomic::{AtomicUsize, Ordering};

use tessera_solver::embed::WorkerPool;

use crate::status::{CallError, TesseraStatus, guard};

/// Threads of the next handle's pool; 0 means rayon's default.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many worker threads each handle created afterwards computes on
/// (existing handles keep theirs). `0` (the default) means the
/// `RAYON_NUM_THREADS` environment variable, else one per core. An MPI rank
/// passes the cores it owns; an OpenMP program calls Tessera outside its
/// parallel regions or leaves it `omp_get_max_threads()` cores.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_set_num_threads(n: usize) -> TesseraStatus {
    guard(|| {
        THREADS.store(n, Ordering::Relaxed);
        Ok(())
    })
}

/// A pool of the currently set size.
pub(crate) fn new_pool() -> Result<WorkerPool, CallError> {
    WorkerPool::new(THREADS.load(Ordering::Relaxed)).map_err(|e| {
        CallError::new(
            TesseraStatus::InvalidArgument,
            format!("starting worker threads: {e}"),
        )
    })
}
