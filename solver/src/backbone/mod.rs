//! Backbones: networks that map grid features to the `N` basis functions the
//! hard-constraint layer combines. The FNO (2-D and 3-D) is the paper's choice.
//!
//! The FNO's layers are fused candle custom ops with hand-written kernels
//! (truncated-DFT matrix products on faer, rayon over grid rows), because a
//! paper-scale step (101×1024 grid, width 64, five layers) must run in about a
//! second on two CPU cores and within 1 GiB.

pub mod activation;
mod fno;
mod fourier_layer;
mod gelu;
mod head;
mod init;
mod matmul;
mod real;
pub mod spectral_conv;
pub mod spectrum;
mod storage;

pub use fno::{Fno, FnoConfig};
pub use init::SeededVars;
pub use real::Real;
