//! Run-time compilation of the kernels with NVRTC.
//!
//! NVRTC needs no GPU, only its library (`libnvrtc.so.13`), so the kernels of
//! every PDE are compiled — and checked — on any machine that has it: CI
//! compiles them for the architectures the project supports.
//!
//! A process compiles each source once per architecture: NVRTC takes seconds
//! on the solver's kernels, and a process may load the same kernels many
//! times (the layers of a side-by-side benchmark, a model rebuilt at another
//! resolution, the soft method's loss, tests).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

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

/// The version of the NVRTC library this process loads, `(major, minor)`.
///
/// Errors: NVRTC missing ([`GpuError::NoNvrtc`]).
pub fn version() -> Result<(i32, i32), GpuError> {
    if !available() {
        return Err(GpuError::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above) and the call only
    // writes the two integers it is given.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| GpuError::Unsupported(format!("NVRTC did not report its version: {e}")))?;
    Ok((major, minor))
}

/// The PTX of every source this process compiled, by architecture and
/// source.
static COMPILED: LazyLock<Mutex<HashMap<(&'static str, String), Ptx>>> =
    LazyLock::new(Mutex::default);

/// How many distinct sources (per architecture) this process has compiled:
/// what [`compile`]'s cache holds.
pub fn compiled_sources() -> usize {
    COMPILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

/// Compiles `source` to PTX for the virtual architecture `arch` (e.g.
/// `"compute_90"`), with C++17 and no fast math (no reassociation,
/// approximate division or flushed subnormals); a source compiled before in
/// this process comes from the cache. NVRTC's default contraction of
/// `a * b + c` into fused multiply-adds stays on: it is faster and rounds
/// once instead of twice, so the device's results differ from the host's
/// in the last bits, as the order of a sum does (what must match the host
/// bit for bit, like Adam's update, rounds each product on its own with
/// `__dmul_rn`).
///
/// Errors: NVRTC missing ([`GpuError::NoNvrtc`]), or the compiler's log
/// ([`GpuError::Compile`]).
pub fn compile(source: &str, arch: &'static str) -> Result<Ptx, GpuError> {
    if !available() {
        return Err(GpuError::NoNvrtc);
    }
    let compiled = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(ptx) = compiled().get(&(arch, source.to_owned())) {
        return Ok(ptx.clone());
    }
    // Compiled without the lock: other sources need not wait.
    let ptx = compile_now(source, arch)?;
    compiled().insert((arch, source.to_owned()), ptx.clone());
    Ok(ptx)
}

/// [`compile`] without the cache.
fn compile_now(source: &str, arch: &'static str) -> Result<Ptx, GpuError> {
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
