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
use std::sync::atomic::{AtomicUsize, Ordering};

use tessera_constraints::gpu::{kernel, nvrtc, ptxas};
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

/// One compilation: definition name, basis size, kernel source, NVRTC
/// architecture and `ptxas` machine.
type Job = (String, usize, String, &'static str, &'static str);

#[test]
fn every_shipped_definition_compiles_and_assembles_for_ampere_and_hopper() {
    let Some(ptxas) = ptxas::test_tools() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every definition, basis size and architecture is a separate compilation
    // (NVRTC programs are independent, `ptxas` a process of its own): spread
    // over the cores, as a CI machine has few and this test takes minutes.
    let jobs: Vec<Job> = kernels()
        .into_iter()
        .flat_map(|(name, n_basis, source)| {
            nvrtc::ARCHITECTURES
                .into_iter()
                .zip(ptxas::MACHINES)
                .map(move |(arch, sm)| (name.clone(), n_basis, source.clone(), arch, sm))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len()) {
            scope.spawn(|| {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    compile_and_assemble(job, ptxas.as_deref(), &dir);
                }
            });
        }
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// One definition's kernels for one architecture: compiled, then (with
/// `ptxas`) assembled with the expected entry points and no spills.
fn compile_and_assemble((name, n_basis, source, arch, sm): &Job, ptxas: Option<&Path>, dir: &Path) {
    let ptx = nvrtc::compile(source, arch)
        .unwrap_or_else(|e| panic!("{name}, N = {n_basis}, {arch}: {e}"));
    assert!(
        ptx.to_src().contains(".entry tessera_lm_step"),
        "{name}, N = {n_basis}, {arch}: the PTX has the solver's entry point"
    );
    let Some(ptxas) = ptxas else { return };
    let stem = format!("{name}-{n_basis}-{sm}");
    let kernels = ptxas::assemble(ptxas, &ptx.to_src(), sm, dir, &stem)
        .unwrap_or_else(|e| panic!("{name}, N = {n_basis}, {sm}: {e}"));
    // The solver's four (sums, steps, backward steps, backward rows), the two
    // gathers, the PDE loss's three kernels and the four passes over the grid.
    let mut expected = kernel::LM_FUNCTIONS.to_vec();
    expected.extend([kernel::GATHER_FUNCTION, kernel::GATHER_VALUES_FUNCTION]);
    expected.extend(kernel::FIELD_FUNCTIONS);
    expected.extend(kernel::TILES_FUNCTIONS);
    expected.sort_unstable();
    let mut names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, expected, "{name}, N = {n_basis}, {sm}: the kernels");
    for k in kernels {
        println!(
            "{name:>20} N = {n_basis:2} {sm} {}: {} registers, spills {}/{} bytes",
            k.name, k.registers, k.spill_stores, k.spill_loads
        );
        assert_eq!(
            (k.spill_stores, k.spill_loads),
            (0, 0),
            "{name}, N = {n_basis}, {sm}, {}: spills",
            k.name
        );
    }
}
