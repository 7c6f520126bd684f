//! Run-time compilation of the kernels with NVRTC.
//!
//! NVRTC needs no GPU, only its library (`libnvrtc.so.13`), so the kernels of
//! every PDE are compiled — and checked — on any machine that has it: CI
//! compiles them for the architectures the project supports.

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::GpuError;

/// The virtual architectures the kernels are checked against: Ampere (A100)
/// and Hopper (H100, H200).
pub const ARCHITECTURES: [&str; 2] = ["compute_80", "compute_90"];

/// Whether NVRTC can be loaded on this machine.
pub fn available() -> bool {
    // SAFETY: only probes for the library with `dlopen`; nothing is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles `source` to PTX for the virtual architecture `arch` (e.g.
/// `"compute_90"`), with C++17 and float64 arithmetic as written (no fast
/// math).
///
/// Errors: NVRTC missing ([`GpuError::NoNvrtc`]), or the compiler's log
/// ([`GpuError::Compile`]).
pub fn compile(source: &str, arch: &'static str) -> Result<Ptx, GpuError> {
    if !available() {
        return Err(GpuError::NoNvrtc);
    }
    let options = CompileOptions {
        arch: Some(arch),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source, options).map_err(|e| GpuError::Compile {
        arch: arch.into(),
        log: match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => other.to_string(),
        },
    })
}
