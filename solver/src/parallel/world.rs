//! The world a process runs in: one rank without a launcher, or MPI's world
//! under `mpirun`/`srun` (feature `mpi`). Starting checks the launch (a launch
//! without MPI support, or a world that differs from what the launcher
//! declared, is refused), and the world ends the whole job when one rank fails:
//! [`with_world`] aborts on an error, and MPI's panic hook on a panic, so no
//! rank is left waiting in a collective for a partner that is gone.

use std::fmt::Display;

use tessera_experts::comm::{Communicator, Local};

use super::{ParallelError, launcher};

/// The ranks of one run and the communicator between them.
pub struct World {
    comm: Box<dyn Communicator>,
}

impl World {
    /// A world of one process.
    pub fn local() -> Self {
        Self {
            comm: Box::new(Local),
        }
    }

    /// The world this process was launched into (see the module docs).
    pub fn from_env() -> Result<Self, ParallelError> {
        match launcher::from_env()? {
            None => Ok(Self::local()),
            Some(launcher) => Self::launched(launcher),
        }
    }

    #[cfg(not(feature = "mpi"))]
    fn launched(launcher: launcher::Launcher) -> Result<Self, ParallelError> {
        if launcher.size == 1 {
            return Ok(Self::local());
        }
        Err(ParallelError::NeedsMpiFeature {
            launcher: launcher.name,
            size: launcher.size,
        })
    }

    #[cfg(feature = "mpi")]
    fn launched(launcher: launcher::Launcher) -> Result<Self, ParallelError> {
        let mpi = tessera_experts::comm::Mpi::init()?;
        if mpi.size() != launcher.size {
            return Err(ParallelError::WorldMismatch {
                launcher: launcher.name,
                declared: launcher.size,
                actual: mpi.size(),
            });
        }
        mpi.install_panic_hook();
        Ok(Self {
            comm: Box::new(mpi),
        })
    }

    /// The communicator.
    pub fn comm(&self) -> &dyn Communicator {
        &*self.comm
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// Whether this rank owns the run directory and the output (rank 0).
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// Runs `job` in the world this process was launched into. In a multi-rank
/// world an error ends every rank at once (exit code 1, the rank and the cause
/// on stderr) instead of leaving the others blocked; alone, it is returned.
pub fn with_world<T, E: Display + From<ParallelError>>(
    job: impl FnOnce(&World) -> Result<T, E>,
) -> Result<T, E> {
    let world = World::from_env()?;
    match job(&world) {
        Err(e) if world.size() > 1 => world.comm().abort(1, &format!("{e:#}")),
        result => result,
    }
}
