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

/// What [`COMPILED`] keys its PTX by: architecture, contraction, source.
type Compilation = (&'static str, Contraction, String);

/// The PTX of every source this process compiled.
static COMPILED: LazyLock<Mutex<HashMap<Compilation, Ptx>>> = LazyLock::new(Mutex::default);

/// The environment variable that turns NVRTC's fused multiply-adds off for
/// a process: `0` (separate products and sums, rounded each), `1` (the
/// default: fused).
pub const FMAD_VARIABLE: &str = "TESSERA_NVRTC_FMAD";

/// Whether NVRTC contracts `a * b + c` into fused multiply-adds.
///
/// Fused is the default and what the performance figures use. Separate is a
/// diagnostic: the host build of the kernels (through the shim, which CI
/// tests against the CPU) never fuses, so a GPU result that differs from
/// the CPU's beyond the last bits with contraction on and agrees with it
/// off was decided by rounding (a step at a threshold, a sum that cancels),
/// not by a kernel that computes something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contraction {
    /// `--fmad=true`: one rounding per multiply-add.
    Fused,
    /// `--fmad=false`: the product and the sum each rounded.
    Separate,
}

impl Contraction {
    /// The value of [`FMAD_VARIABLE`], if any, read: unset or `1` fuses,
    /// `0` separates.
    ///
    /// Errors: any other value ([`GpuError::Unsupported`]): a misspelt
    /// diagnostic that silently did nothing would mislead its reader.
    pub fn parse(value: Option<&str>) -> Result<Self, GpuError> {
        match value {
            None | Some("1") => Ok(Contraction::Fused),
            Some("0") => Ok(Contraction::Separate),
            Some(other) => Err(GpuError::Unsupported(format!(
                "{FMAD_VARIABLE} must be 0 (no fused multiply-adds) or 1 (the default), not {other:?}"
            ))),
        }
    }

    /// This process's contraction: [`FMAD_VARIABLE`] read.
    ///
    /// Errors: as [`Contraction::parse`].
    pub fn of_process() -> Result<Self, GpuError> {
        Self::parse(std::env::var(FMAD_VARIABLE).ok().as_deref())
    }

    /// NVRTC's `--fmad`.
    fn fmad(self) -> bool {
        self == Contraction::Fused
    }
}

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
/// approximate division or flushed subnormals), and with this process's
/// [`Contraction`]; a source compiled before in this process comes from the
/// cache. By default NVRTC's contraction of `a * b + c` into fused
/// multiply-adds stays on: it is faster and rounds once instead of twice,
/// so the device's results differ from the host's in the last bits, as the
/// order of a sum does (what must match the host bit for bit, like Adam's
/// update, rounds each product on its own with `__dmul_rn`).
///
/// Errors: NVRTC missing ([`GpuError::NoNvrtc`]), a malformed
/// [`FMAD_VARIABLE`], or the compiler's log ([`GpuError::Compile`]).
pub fn compile(source: &str, arch: &'static str) -> Result<Ptx, GpuError> {
    compile_with(source, arch, Contraction::of_process()?)
}

/// [`compile`] with the contraction `contraction`, whatever the process's.
///
/// Errors: as [`compile`].
pub fn compile_with(
    source: &str,
    arch: &'static str,
    contraction: Contraction,
) -> Result<Ptx, GpuError> {
    if !available() {
        return Err(GpuError::NoNvrtc);
    }
    let compiled = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (arch, contraction, source.to_owned());
    if let Some(ptx) = compiled().get(&key) {
        return Ok(ptx.clone());
    }
    // Compiled without the lock: other sources need not wait.
    let ptx = compile_now(source, arch, contraction)?;
    compiled().insert(key, ptx.clone());
    Ok(ptx)
}

/// [`compile_with`] without the cache.
fn compile_now(
    source: &str,
    arch: &'static str,
    contraction: Contraction,
) -> Result<Ptx, GpuError> {
    let options = CompileOptions {
        arch: Some(arch),
        fmad: Some(contraction.fmad()),
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
