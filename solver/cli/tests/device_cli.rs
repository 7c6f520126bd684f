//! `--device`: a GPU request is refused with a message that says what to do,
//! whichever part is missing (the TOML definition the kernel compiles, the
//! `cuda` feature, or a CUDA driver), and never falls back to the CPU silently.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tessera bench constraint` on a tiny problem with `extra` arguments: the
/// exit status and stderr.
fn bench(extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "bench",
            "constraint",
            "--pde",
            "diffusion-sorption",
            "--nt",
            "6",
            "--nx",
            "16",
            "--points",
            "20",
            "--runs",
            "1",
        ])
        .args(extra)
        .current_dir(repo())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the tessera binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_gpu_needs_a_pde_definition() {
    let (ok, err) = bench(&["--device", "cuda"]);
    assert!(!ok);
    assert!(err.contains("--pde-file"), "{err}");
}

#[test]
fn a_gpu_request_without_a_gpu_says_why() {
    let (ok, err) = bench(&[
        "--pde-file",
        "scenarios/pdes/diffusion-sorption.toml",
        "--device",
        "cuda:0",
    ]);
    assert!(!ok, "no GPU here, so no result: {err}");
    let why = if cfg!(feature = "cuda") {
        "no CUDA driver found"
    } else {
        "built without the `cuda` feature"
    };
    assert!(err.contains(why), "{err}");
}

#[test]
fn unknown_devices_are_refused_by_name() {
    let (ok, err) = bench(&["--device", "tpu"]);
    assert!(!ok);
    assert!(err.contains("cpu, cuda or cuda:N"), "{err}");
}

#[test]
fn the_cpu_device_runs_the_side_by_side_benchmark() {
    let (ok, err) = bench(&[
        "--pde-file",
        "scenarios/pdes/diffusion-sorption.toml",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{err}");
}
