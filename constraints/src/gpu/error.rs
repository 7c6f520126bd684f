//! What can go wrong on the way to a GPU solve.

/// Errors of the CUDA back end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// The CUDA driver library could not be loaded.
    #[error(
        "no CUDA driver found; built with --features cuda but running on a machine without a GPU \
         (libcuda.so is not on the library path)"
    )]
    NoDriver,
    /// The NVRTC library could not be loaded.
    #[error(
        "NVRTC (libnvrtc.so.13) not found: install the CUDA toolkit's NVRTC or the PyPI wheel \
         nvidia-cuda-nvrtc==13.0.*, and put its lib folder on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    /// NVRTC rejected the source.
    #[error("NVRTC could not compile the kernel for {arch}: {log}")]
    Compile { arch: String, log: String },
    /// A driver call failed (device, memory, module or launch).
    #[error("CUDA driver error in {what}: {message}")]
    Driver { what: &'static str, message: String },
    /// The problems do not fit the kernel (sizes, layouts, limits).
    #[error("cannot solve on the GPU: {0}")]
    Unsupported(String),
}
