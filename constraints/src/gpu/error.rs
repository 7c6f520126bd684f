//! What can go wrong on the way to a GPU solve.

use cudarc::driver::{DriverError, sys::cudaError_enum};

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
    /// The device had no memory left for an allocation: what the user can
    /// change is the problem's size, so the message names those settings.
    #[error(
        "out of GPU memory {what}{}: lower `training.batch_size` (`--batch`), the experts' \
         `constraint.points` or `model.n_basis`, or spread the batch over more GPUs (one \
         process per GPU, `parallel.data`); `tessera bench train-step --device cuda` reports \
         a step's peak (`gpu_peak_mib`)",
        memory_note(*.free_total)
    )]
    OutOfMemory {
        what: &'static str,
        /// The device's free and total memory in bytes when it happened,
        /// where the driver could say.
        free_total: Option<(usize, usize)>,
    },
    /// The problems do not fit the kernel (sizes, layouts, limits).
    #[error("cannot solve on the GPU: {0}")]
    Unsupported(String),
}

impl GpuError {
    /// `e`, the driver's error `what` was doing: [`GpuError::OutOfMemory`]
    /// (with the device's free and total memory, read then) where the
    /// driver had no memory left, else [`GpuError::Driver`] with the
    /// error's name and, where a driver is loaded, its description.
    pub fn from_driver(what: &'static str, e: DriverError) -> Self {
        if e.0 == cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
            let free_total = super::Gpu::driver_present()
                .then(cudarc::driver::result::mem_get_info)
                .and_then(Result::ok);
            return GpuError::OutOfMemory { what, free_total };
        }
        // The code's name, then the driver's description of it where a
        // driver is loaded: cudarc's own formatting asks the driver, which
        // panics where there is none.
        let name = format!("{:?}", e.0);
        let message = match super::Gpu::driver_present().then(|| e.error_string()) {
            Some(Ok(text)) => format!("{name} ({})", text.to_string_lossy()),
            _ => name,
        };
        GpuError::Driver { what, message }
    }
}

/// " (F of T MiB free)", or nothing where the memory is unknown.
fn memory_note(free_total: Option<(usize, usize)>) -> String {
    const MIB: usize = 1 << 20;
    free_total.map_or_else(String::new, |(free, total)| {
        format!(" ({} of {} MiB free)", free / MIB, total / MIB)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver's out-of-memory code becomes the typed error that says
    /// what to lower; any other code stays the driver's error.
    #[test]
    fn out_of_memory_names_the_settings_to_lower() {
        let oom = DriverError(cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY);
        let err = GpuError::from_driver("allocating the solver's scratch", oom);
        assert_eq!(
            err,
            GpuError::OutOfMemory {
                what: "allocating the solver's scratch",
                free_total: None,
            },
            "no driver here, so no memory figures"
        );
        let text = err.to_string();
        for setting in ["training.batch_size", "constraint.points", "parallel.data"] {
            assert!(text.contains(setting), "{text}");
        }
        assert!(
            text.starts_with("out of GPU memory allocating the solver's scratch: "),
            "{text}"
        );
        let known = GpuError::OutOfMemory {
            what: "allocating an output",
            free_total: Some((3 << 20, 80 << 30)),
        };
        assert!(
            known
                .to_string()
                .contains("allocating an output (3 of 81920 MiB free): "),
            "{known}"
        );
        let other = GpuError::from_driver(
            "launching a gather",
            DriverError(cudaError_enum::CUDA_ERROR_LAUNCH_FAILED),
        );
        assert!(
            matches!(&other, GpuError::Driver { what: "launching a gather", message }
                if message.starts_with("CUDA_ERROR_LAUNCH_FAILED")),
            "{other}"
        );
    }
}
