//! The GPU solver's kernels for every shipped PDE definition, compiled as a GPU
//! machine would compile them: NVRTC to PTX for Ampere and Hopper, then `ptxas`
//! to machine code, where register use is read off and spills are refused.
//!
//! NVRTC and `ptxas` come with the CUDA toolkit or the PyPI wheels
//! `nvidia-cuda-nvrtc` and `nvidia-cuda-nvcc` (13.0.x), no GPU needed. Without
//! them each test says it is skipped and why — unless
//! `TESSERA_REQUIRE_CUDA_TOOLS=1` (set by CI), which makes their absence a
//! failure.
#![cfg(feature = "cuda")]

use std::path::{Path, PathBuf};
use std::process::Command;

use tessera_constraints::gpu::nvrtc;
use tessera_scenarios::custom::CustomPde;

/// The shipped definitions and the basis sizes of the paper's experiments
/// (16 for diffusion–sorption, 64 for Navier–Stokes).
fn kernels() -> Vec<(String, usize, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the shipped definitions are found");
    let mut out = Vec::new();
    for file in files {
        let pde = CustomPde::from_file(&file).expect("shipped definition loads");
        for n_basis in [16, 64] {
            let source = pde.gpu_source(n_basis).expect("kernel source");
            out.push((pde.name().to_owned(), n_basis, source));
        }
    }
    out
}

fn required() -> bool {
    std::env::var("TESSERA_REQUIRE_CUDA_TOOLS").is_ok_and(|v| v == "1")
}

/// Whether to go on: true when `available`; otherwise a skip notice, or a
/// failure where the tools are required.
fn tool(available: bool, what: &str) -> bool {
    if !available {
        assert!(
            !required(),
            "{what} is required (TESSERA_REQUIRE_CUDA_TOOLS=1) but missing"
        );
        println!(
            "skipped: {what} not found (install the 13.0.x wheels, see the README's GPU section)"
        );
    }
    available
}

/// `ptxas`: `$TESSERA_PTXAS`, else the one on `PATH`.
fn ptxas() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TESSERA_PTXAS") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("ptxas").arg("--version").output().ok()?;
    out.status.success().then(|| PathBuf::from("ptxas"))
}

/// `(entry function, registers, spill store bytes, spill load bytes)` of
/// every kernel in a `ptxas -v` log.
fn usage(log: &str) -> Vec<(String, u32, u32, u32)> {
    let number_before = |s: &str, unit: &str| -> u32 {
        let end = s
            .find(unit)
            .unwrap_or_else(|| panic!("`{unit}` in ptxas output:\n{s}"));
        s[..end].split_whitespace().last().unwrap().parse().unwrap()
    };
    log.split("Compiling entry function '")
        .skip(1)
        .map(|part| {
            let name = part.split('\'').next().unwrap_or_default().to_owned();
            (
                name,
                number_before(part, "registers"),
                number_before(part, "bytes spill stores"),
                number_before(part, "bytes spill loads"),
            )
        })
        .collect()
}

#[test]
fn every_shipped_definition_compiles_and_assembles_for_ampere_and_hopper() {
    if !tool(
        nvrtc::available(),
        "NVRTC (libnvrtc.so.13 on LD_LIBRARY_PATH)",
    ) {
        return;
    }
    let ptxas = ptxas();
    if ptxas.is_none() {
        tool(false, "ptxas (on PATH or $TESSERA_PTXAS)");
    }
    let dir = std::env::temp_dir().join(format!("tessera-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, n_basis, source) in kernels() {
        for (arch, sm) in nvrtc::ARCHITECTURES.into_iter().zip(["sm_80", "sm_90"]) {
            let ptx = nvrtc::compile(&source, arch)
                .unwrap_or_else(|e| panic!("{name}, N = {n_basis}, {arch}: {e}"));
            assert!(
                ptx.to_src().contains(".entry tessera_lm_solve"),
                "{name}, N = {n_basis}, {arch}: the PTX has the solver's entry point"
            );
            let Some(ptxas) = &ptxas else { continue };
            let file = dir.join(format!("{name}-{n_basis}-{sm}.ptx"));
            std::fs::write(&file, ptx.to_src()).unwrap();
            let out = Command::new(ptxas)
                .args(["-v", &format!("-arch={sm}"), "-o"])
                .arg(file.with_extension("cubin"))
                .arg(&file)
                .output()
                .expect("ptxas runs");
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{name}, N = {n_basis}, {sm}: ptxas failed:\n{log}"
            );
            let kernels = usage(&log);
            assert_eq!(kernels.len(), 2, "{name}, N = {n_basis}, {sm}: two kernels");
            for (kernel, registers, stores, loads) in kernels {
                println!(
                    "{name:>20} N = {n_basis:2} {sm} {kernel}: {registers} registers, spills {stores}/{loads} bytes"
                );
                assert_eq!(
                    (stores, loads),
                    (0, 0),
                    "{name}, N = {n_basis}, {sm}, {kernel}: spills"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
