//! A rayon pool owned by one caller, so an embedding program decides how many
//! threads Tessera uses (an MPI rank or an OpenMP code already has its own) and
//! no work lands on rayon's process-wide global pool.
//!
//! Dropping the pool joins its threads: rayon alone only signals them to exit,
//! and a host program that frees a model and exits (or checks for
//! leaks, as valgrind does) must not find Tessera threads still running.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::SolverError;

/// A fixed-size thread pool that joins its threads when dropped.
pub struct WorkerPool {
    pool: Option<ThreadPool>,
    /// The pool's threads, spawned by us (not by rayon) so that they can be
    /// joined: a thread that merely signalled its exit may still hold its stack
    /// and thread-local storage for a moment.
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl WorkerPool {
    /// A pool of `threads` threads; `0` means rayon's default (the
    /// `RAYON_NUM_THREADS` environment variable, else one per core).
    ///
    /// Errors: the operating system refused to start the threads.
    pub fn new(threads: usize) -> Result<Self, SolverError> {
        // Built first, so that if rayon fails part-way its drop joins the
        // threads that did start.
        let mut pool = Self {
            pool: None,
            threads: Arc::new(Mutex::new(Vec::new())),
        };
        let spawned = Arc::clone(&pool.threads);
        let built = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tessera-{i}"))
            .spawn_handler(move |thread| {
                let mut builder = std::thread::Builder::new();
                if let Some(name) = thread.name() {
                    builder = builder.name(name.to_owned());
                }
                if let Some(size) = thread.stack_size() {
                    builder = builder.stack_size(size);
                }
                let handle = builder.spawn(|| thread.run())?;
                spawned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(handle);
                Ok(())
            })
            .build()
            .map_err(|e| SolverError::InvalidConfig {
                key: "threads",
                value: threads.to_string(),
                reason: e.to_string(),
            })?;
        pool.pool = Some(built);
        Ok(pool)
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
        // Dropping rayon's pool tells its threads to exit once idle; joining
        // them waits until they are gone (also when `new` failed part-way, so
        // no started thread outlives the error).
        drop(self.pool.take());
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            // A worker that panicked has already reported through rayon.
            let _ = handle.join();
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
