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
    /// The driver cannot load the PTX of this NVRTC.
    #[error(
        "the CUDA driver supports CUDA {}.{}, older than the NVRTC {}.{} that compiles the \
         kernels: update the driver (CUDA 13 needs 580 or later) or put an NVRTC of CUDA {0}.{1} \
         first on LD_LIBRARY_PATH",
        driver.0, driver.1, nvrtc.0, nvrtc.1
    )]
    DriverTooOld {
        /// The driver's CUDA version `(major, minor)`.
        driver: (i32, i32),
        /// NVRTC's version `(major, minor)`.
        nvrtc: (i32, i32),
    },
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
