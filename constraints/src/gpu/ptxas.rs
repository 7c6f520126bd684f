//! Assembling PTX to machine code with `ptxas` (the CUDA toolkit's, or the
//! PyPI wheel `nvidia-cuda-nvcc`'s), as a GPU machine's driver would, to read
//! off every kernel's register use and refuse spills — on any machine, no GPU
//! needed. The test suites compile every kernel this way.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::GpuError;

/// The machine architectures paired with [`super::nvrtc::ARCHITECTURES`]:
/// Ampere (A100) and Hopper (H100, H200).
pub const MACHINES: [&str; 2] = ["sm_80", "sm_90"];

/// One kernel's resources, as `ptxas -v` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelUsage {
    /// The entry point.
    pub name: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of spill stores.
    pub spill_stores: u32,
    /// Bytes of spill loads.
    pub spill_loads: u32,
}

/// `ptxas`: `$TESSERA_PTXAS`, else the one on `PATH`, if it runs.
pub fn find() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TESSERA_PTXAS") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("ptxas").arg("--version").output().ok()?;
    out.status.success().then(|| PathBuf::from("ptxas"))
}

/// Whether a test suite may go on with a CUDA tool: true when `available`;
/// otherwise it prints that the test is skipped and why — or fails, where
/// `TESSERA_REQUIRE_CUDA_TOOLS=1` (as in CI) makes the tools mandatory.
///
/// # Panics
/// When the tool is missing but required.
#[track_caller]
pub fn tool_available(available: bool, what: &str) -> bool {
    if !available {
        let required = std::env::var("TESSERA_REQUIRE_CUDA_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{what} is required (TESSERA_REQUIRE_CUDA_TOOLS=1) but missing"
        );
        println!(
            "skipped: {what} not found (install the 13.0.x wheels, see the README's GPU section)"
        );
    }
    available
}

/// The CUDA tools a kernel-compilation test uses: `None` when NVRTC is
/// missing (the test is skipped, saying why), else `ptxas` if found (without
/// it the test compiles to PTX only, saying so) — or a failure for either
/// under `TESSERA_REQUIRE_CUDA_TOOLS=1` ([`tool_available`]).
#[track_caller]
pub fn test_tools() -> Option<Option<PathBuf>> {
    if !tool_available(
        super::nvrtc::available(),
        "NVRTC (libnvrtc.so.13 on LD_LIBRARY_PATH)",
    ) {
        return None;
    }
    let ptxas = find();
    if ptxas.is_none() {
        tool_available(false, "ptxas (on PATH or $TESSERA_PTXAS)");
    }
    Some(ptxas)
}

/// Assembles `ptx` for `machine` (e.g. `"sm_90"`) with `ptxas` in `dir`
/// (files `stem.ptx`, `stem.cubin`) and returns every kernel's usage.
///
/// Errors: `ptxas` failing or printing a report this cannot read
/// ([`GpuError::Compile`], with its log).
pub fn assemble(
    ptxas: &Path,
    ptx: &str,
    machine: &str,
    dir: &Path,
    stem: &str,
) -> Result<Vec<KernelUsage>, GpuError> {
    let failed = |log: String| GpuError::Compile {
        arch: machine.into(),
        log,
    };
    let file = dir.join(format!("{stem}.ptx"));
    std::fs::write(&file, ptx).map_err(|e| failed(format!("writing {}: {e}", file.display())))?;
    let out = Command::new(ptxas)
        .args(["-v", &format!("-arch={machine}"), "-o"])
        .arg(file.with_extension("cubin"))
        .arg(&file)
        .output()
        .map_err(|e| failed(format!("running {}: {e}", ptxas.display())))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(failed(log));
    }
    usage(&log).ok_or_else(|| failed(format!("unreadable ptxas report:\n{log}")))
}

/// Every kernel's usage in a `ptxas -v` log.
fn usage(log: &str) -> Option<Vec<KernelUsage>> {
    let number_before = |s: &str, unit: &str| -> Option<u32> {
        s[..s.find(unit)?].split_whitespace().last()?.parse().ok()
    };
    log.split("Compiling entry function '")
        .skip(1)
        .map(|part| {
            Some(KernelUsage {
                name: part.split('\'').next()?.to_owned(),
                registers: number_before(part, "registers")?,
                spill_stores: number_before(part, "bytes spill stores")?,
                spill_loads: number_before(part, "bytes spill loads")?,
            })
        })
        .collect()
}
