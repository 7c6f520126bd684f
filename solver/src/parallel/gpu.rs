//! Which GPU this process uses (feature `cuda`): the one `device` names
//! (`cuda:N`), or for `device = "cuda"` the GPU of the process's local rank on
//! its node — one process per GPU under `mpirun` or `srun`, shared
//! round-robin when a node runs more processes than it has GPUs
//! ([`Device::gpu`]).

use tessera_constraints::gpu::Gpu;
use tessera_scenarios::Device;

use super::launcher;
use crate::SolverError;

/// The GPU ordinal for `device` (`None`: the CPU).
///
/// Errors: for `cuda`, no driver, or a launcher's local rank that is not a
/// number.
pub fn gpu_ordinal(device: Device) -> Result<Option<usize>, SolverError> {
    match device {
        Device::Cpu => Ok(None),
        Device::Cuda(Some(n)) => Ok(Some(n)),
        Device::Cuda(None) => Ok(device.gpu(launcher::local_rank()?, Gpu::count()?)),
    }
}
