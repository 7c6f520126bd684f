//! Backbones: networks that map grid features to the `N` basis functions the
//! hard-constraint layer combines. The FNO (2-D and 3-D) is the paper's choice.
//!
//! The whole FNO is one candle custom op chaining hand-written layer kernels
//! (truncated-DFT matrix products on faer, rayon over grid rows), because a
//! paper-scale step (101×1024 grid, width 64, five layers) must run in about a
//! second on two CPU cores and within 1 GiB.

pub mod activation;
#[cfg(feature = "cuda")]
pub mod device;
mod fno;
mod fourier_layer;
mod head;
pub mod host_slot;
mod init;
mod matmul;
mod network_op;
mod pools;
mod real;
pub mod spectral_conv;
pub mod spectrum;
pub(crate) mod storage;
mod timed_op;

pub(crate) use fno::NetworkOpBox;
pub use fno::{Fno, FnoConfig};
pub use init::SeededVars;
pub use real::Real;
