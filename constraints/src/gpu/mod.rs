//! The CUDA back end of the constraint layer (cargo feature `cuda`): every
//! expert problem of a batch solved at once on an NVIDIA GPU, each problem's
//! points spread over many thread blocks, with the whole Levenberg–Marquardt
//! iteration on the device.
//!
//! The pieces, in the order a solve uses them:
//! - [`kernel`]: the CUDA C++ source — the PDE's residual as
//!   [`crate::expr::cuda`] emits it from the one definition, then the batched
//!   solver `lm.cu` and `lm_step.cu`, which follow [`crate::lm`] step for
//!   step — and
//!   [`Batch`], the problems packed into the arrays the kernel reads;
//! - [`nvrtc`]: run-time compilation of that source to PTX (no GPU needed, only
//!   the NVRTC library), and [`ptxas`], which assembles it as the driver would
//!   to check register use;
//! - [`device`]: the GPU itself ([`Gpu::open`], a typed error when there is no
//!   driver) and [`GpuLm`], which uploads a batch, launches the kernels and
//!   returns one [`crate::LmSolution`] per problem, and can leave the batch
//!   on the device for its backward pass ([`SolvedBatch`]);
//! - [`gather`]: problems whose term rows the GPU builds from the basis
//!   ([`GatheredProblem`], [`RowGather`]) at the experts' sampled points,
//!   from the residual's terms at every grid point kept there
//!   ([`DeviceTiles`]), so the largest part of a batch is never built on
//!   the host nor copied up;
//! - [`field`]: the PDE loss of whole fields ([`GpuFieldResidual`]), with
//!   the same residual, so a training step's losses run there too;
//! - [`tiles`]: for a batch gathered from fields it kept, the layer's
//!   passes over the whole grid — the assembly of `u`, the experts' `ω̄`
//!   and the pull-back to the fields ([`GpuLm::assemble`],
//!   [`GpuLm::pull_back`]);
//! - [`times`]: where a solver's calls spend their time (packing, copies,
//!   kernels), for reports;
//! - [`staging`]: the copies between host and device of every piece above,
//!   large ones through page-locked buffers.
//!
//! The kernel's arithmetic is also compiled for the host in the tests (a shim
//! runs each block's threads as fibers, in turn between barriers) and
//! compared with the CPU solver there, so a machine without a GPU checks
//! everything but the launch.

pub mod device;
pub mod error;
pub mod field;
pub mod gather;
pub mod kernel;
pub mod nvrtc;
pub mod ptxas;
pub mod staging;
pub mod tiles;
pub mod times;

pub use device::{
    Gpu, GpuLm, SolvedBatch, architecture_for, bind_for_drop, driver_loads_ptx_of, driver_version,
};

/// A C++ header that runs CUDA kernels on the host, for tests on machines
/// without a GPU: each block's threads are fibers that run in turn up to
/// each `__syncthreads`, `__shared__` variables statics (blocks run one at a
/// time, launches must not overlap); a barrier in divergent code aborts the
/// program saying so.
/// `tessera_launch(blocks, threads, kernel, args…)` launches with typed
/// arguments, `tessera_launch_params(blocks, threads, kernel, params)` with
/// the driver's `void**` argument array. Enough for kernels written with
/// static shared memory, barriers and loops over `threadIdx.x` (no warp
/// intrinsics, no atomics).
pub const HOST_SHIM: &str = include_str!("host_shim.h");
pub use error::GpuError;
pub use field::{FieldLoss, GpuFieldResidual, segment_scales};
pub use gather::{GatheredProblem, RowGather};
pub use kernel::{Batch, BatchProblem, KernelShape, MAX_BASIS, THREADS};
pub use tiles::{DeviceTiles, PullBackRows, Tiles};
pub use times::{GpuTimes, SolveTimes, Stopwatch};
