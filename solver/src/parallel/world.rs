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
    /// NCCL between the ranks' GPUs, once a GPU run asked for it
    /// ([`World::use_device`]); from then on every collective goes there.
    /// Declared first, so it closes before MPI finalises.
    #[cfg(feature = "nccl")]
    gpus: std::cell::OnceCell<tessera_experts::comm::Nccl>,
    comm: Box<dyn Communicator>,
}

impl World {
    /// A world of one process.
    pub fn local() -> Self {
        Self::over(Box::new(Local))
    }

    fn over(comm: Box<dyn Communicator>) -> Self {
        Self {
            #[cfg(feature = "nccl")]
            gpus: std::cell::OnceCell::new(),
            comm,
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
        Ok(Self::over(Box::new(mpi)))
    }

    /// Moves the collectives onto the GPUs when the run uses them: with the
    /// `nccl` feature, a world of several ranks and a CUDA `device`, NCCL
    /// between each rank's GPU (`gpu_ordinal`) replaces MPI for every
    /// later collective. Otherwise (one rank, the CPU, or a build without
    /// `nccl`) nothing changes. Collective: every rank calls it at the same
    /// point; later calls do nothing.
    ///
    /// Errors: the GPU does not open, or NCCL cannot start on some rank.
    pub fn use_device(&self, device: tessera_scenarios::Device) -> Result<(), crate::SolverError> {
        #[cfg(feature = "nccl")]
        if self.size() > 1
            && self.gpus.get().is_none()
            && let Some(ordinal) = crate::gpu_ordinal(device)?
        {
            let gpu = tessera_constraints::gpu::Gpu::open(ordinal)?;
            let nccl = tessera_experts::comm::Nccl::new(&*self.comm, gpu.stream().clone())
                .map_err(ParallelError::from)?;
            // Not yet set (checked above), and a world is not shared between
            // threads.
            let _ = self.gpus.set(nccl);
        }
        #[cfg(not(feature = "nccl"))]
        let _ = device;
        Ok(())
    }

    /// The communicator: NCCL after [`World::use_device`] chose it, else the
    /// launcher's (MPI) or the single rank's.
    pub fn comm(&self) -> &dyn Communicator {
        #[cfg(feature = "nccl")]
        if let Some(nccl) = self.gpus.get() {
            return nccl;
        }
        &*self.comm
    }

    /// The name of the transport [`World::comm`] runs on: `"local"` (one
    /// rank, nothing to exchange), `"mpi"` or `"nccl"`.
    pub fn transport(&self) -> &'static str {
        #[cfg(feature = "nccl")]
        if self.gpus.get().is_some() {
            return "nccl";
        }
        if self.size() > 1 { "mpi" } else { "local" }
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
        // Through the launcher's communicator (MPI), which ends every rank
        // even when the collectives run on NCCL.
        Err(e) if world.size() > 1 => world.comm.abort(1, &format!("{e:#}")),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_scenarios::Device;

    #[test]
    fn a_single_rank_keeps_its_collectives_on_any_device() {
        let world = World::local();
        for device in [Device::Cpu, Device::Cuda(None), Device::Cuda(Some(3))] {
            // One rank has nothing to exchange: no GPU is opened, so this
            // holds on machines without one.
            world.use_device(device).expect("nothing to set up");
            assert_eq!(world.transport(), "local", "{device}");
            assert_eq!((world.rank(), world.size()), (0, 1));
        }
    }
}
