//! The CUDA back end of the constraint layer (cargo feature `cuda`): every
//! expert problem of a batch solved at once on an NVIDIA GPU, one thread block
//! per problem, with the whole Levenberg–Marquardt iteration on the device.
//!
//! The pieces, in the order a solve uses them:
//! - [`kernel`]: the CUDA C++ source — the PDE's residual as
//!   [`crate::expr::cuda`] emits it from the one definition, then the batched
//!   solver `lm.cu`, which follows [`crate::lm`] step for step — and
//!   [`Batch`], the problems packed into the arrays the kernel reads;
//! - [`nvrtc`]: run-time compilation of that source to PTX (no GPU needed, only
//!   the NVRTC library);
//! - [`device`]: the GPU itself ([`Gpu::open`], a typed error when there is no
//!   driver) and [`GpuLm`], which uploads a batch, launches the kernel and
//!   returns one [`crate::LmSolution`] per problem.
//!
//! The kernel's arithmetic is also compiled for the host in the tests (a shim
//! runs each block's threads as OS threads with a barrier) and compared with
//! the CPU solver there, so a machine without a GPU checks everything but the
//! launch.

pub mod device;
pub mod error;
pub mod kernel;
pub mod nvrtc;

pub use device::{Gpu, GpuLm};
pub use error::GpuError;
pub use kernel::{Batch, KernelShape, MAX_BASIS, THREADS};
