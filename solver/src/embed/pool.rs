//! A rayon pool owned by one caller, so an embedding program decides how many
//! threads Tessera uses (an MPI rank or an OpenMP code already has its own) and
//! no work lands on rayon's process-wide global pool.
//!
//! Dropping the pool waits until its threads have exited: rayon alone only
//! signals them, and a host program that frees a model and exits (or checks for
//! leaks, as valgrind does) must not find Tessera threads still running.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::SolverError;

/// A fixed-size thread pool that joins its threads when dropped.
pub struct WorkerPool {
    pool: Option<ThreadPool>,
    /// Threads that have exited, and the signal of each exit.
    exited: Arc<(Mutex<usize>, Condvar)>,
}

impl WorkerPool {
    /// A pool of `threads` threads; `0` means rayon's default (the
    /// `RAYON_NUM_THREADS` environment variable, else one per core).
    ///
    /// Errors: the operating system refused to start the threads.
    pub fn new(threads: usize) -> Result<Self, SolverError> {
        let exited = Arc::new((Mutex::new(0), Condvar::new()));
        let on_exit = Arc::clone(&exited);
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tessera-{i}"))
            .exit_handler(move |_| {
                let (count, signal) = &*on_exit;
                *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                signal.notify_all();
            })
            .build()
            .map_err(|e| SolverError::InvalidConfig {
                key: "threads",
                value: threads.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool: Some(pool),
            exited,
        })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.pool().current_num_threads()
    }

    /// Runs `work` inside the pool: every rayon parallel loop it reaches
    /// (backbone kernels, expert solves) uses this pool's threads only.
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool().install(work)
    }

    fn pool(&self) -> &ThreadPool {
        self.pool.as_ref().expect("the pool lives until drop")
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        // Rayon starts every thread in `build`; dropping its pool tells them to
        // exit once idle, and each one runs the exit handler last.
        let threads = self
            .pool
            .as_ref()
            .map_or(0, ThreadPool::current_num_threads);
        drop(self.pool.take());
        let (count, signal) = &*self.exited;
        let mut exited = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *exited < threads {
            exited = signal.wait(exited).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads())
            .finish()
    }
}
