//! `tessera constraint solve` end to end: a problem file whose solves meet
//! NaN or an infinity fails the command (every expert) or warns (some of
//! them), after its report; an ordinary one succeeds quietly.
//!
//! The problems are heat on a 9 × 32 grid with two experts. The non-finite
//! ones scale the basis to 1e200 (finite, so the file is accepted), whose
//! squared residual, of order 1e400, overflows: the solve stops NonFinite at
//! its first evaluation whatever the PDE, which is how a mis-scaled basis
//! written by another code meets the command.

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::tessera;
use serde_json::Value;
use tessera_experts::{ExternalProblem, RowScope};
use tessera_meshes::{Grid, Tiling, sample_points};
use tessera_scenarios::AnyPde;
use tessera_scenarios::config::{HeatParams, PdeConfig};
use train_support::temp_dir;

const NT: usize = 9;
const NX: usize = 32;
const N_BASIS: usize = 4;
/// A scale whose square overflows an f64 (≈ 1.8e308).
const HUGE: f64 = 1e200;

/// Writes `dir/name.safetensors`: heat with two experts of 20 points each,
/// its rows local to each tile; a smooth basis (a decaying sine and three
/// products of cosines), scaled by `scale(x index)`.
fn problem(dir: &Path, name: &str, scale: impl Fn(usize) -> f64) -> PathBuf {
    let grid = Grid::uniform_tx(NT, NX, 1.0).unwrap();
    let x = |i: usize| i as f64 / (NX - 1) as f64;
    let ic: Vec<f64> = (0..NX).map(|i| (PI * x(i)).sin()).collect();
    let mut basis = Vec::with_capacity(NT * NX * N_BASIS);
    for k in 0..NT {
        let t = k as f64 / (NT - 1) as f64;
        for (i, &u0) in ic.iter().enumerate() {
            basis.push(scale(i) * u0 * (-0.1 * PI * PI * t).exp());
            for n in 1..N_BASIS {
                let wave = (PI * n as f64 * t).cos() * (PI * (n + 1) as f64 * x(i)).cos();
                basis.push(scale(i) * 0.1 * wave);
            }
        }
    }
    let config = PdeConfig::Heat(HeatParams::default());
    let pde = AnyPde::from_config(&config, Default::default()).unwrap();
    let split = vec![1, 2];
    let tiling = Tiling::new(grid.shape(), &split).unwrap();
    let points = (0..tiling.n_tiles())
        .map(|k| sample_points(&tiling, k, 20, 7, k as u64).unwrap())
        .collect();
    let metadata = pde.metadata().unwrap();
    let problem = ExternalProblem::new(
        pde,
        metadata,
        grid,
        basis,
        N_BASIS,
        ic,
        split,
        RowScope::Local,
        points,
    )
    .unwrap();
    let path = dir.join(format!("{name}.safetensors"));
    std::fs::write(&path, problem.to_bytes()).unwrap();
    path
}

/// `tessera constraint solve --problem path --json`, and its stop reasons.
fn solve(path: &Path) -> (Output, Vec<String>) {
    let output = tessera()
        .args(["constraint", "solve", "--json", "--problem"])
        .arg(path)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let reasons = report["stop_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    (output, reasons)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_solve_non_finite_fails_after_the_report() {
    let dir = temp_dir("cli-constraint-non-finite");
    let (output, reasons) = solve(&problem(&dir, "huge", |_| HUGE));
    let stderr = stderr(&output);
    // The report is printed whole, then the command fails.
    assert_eq!(reasons, ["NonFinite", "NonFinite"], "{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: 2 of 2 expert solves ended NonFinite (experts [0, 1])"),
        "{stderr}"
    );
    assert!(stderr.contains("not a solution"), "{stderr}");
    // The text report too.
    let text = tessera()
        .args(["constraint", "solve", "--problem"])
        .arg(dir.join("huge.safetensors"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(!text.status.success());
    assert!(stdout.contains("expert 1: NonFinite"), "{stdout}");
}

#[test]
fn some_solves_non_finite_warn_and_succeed() {
    let dir = temp_dir("cli-constraint-some-non-finite");
    // Huge from two points past the tile edge (x index 16) on: expert 0's
    // stencils, which reach one point into the next tile, stay finite.
    let path = problem(&dir, "half", |i| if i >= NX / 2 + 2 { HUGE } else { 1.0 });
    let (output, reasons) = solve(&path);
    let stderr = stderr(&output);
    assert_eq!(reasons[1], "NonFinite", "{stderr}");
    assert_ne!(reasons[0], "NonFinite", "{stderr}");
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: 1 of 2 expert solves ended NonFinite (experts [1])"),
        "{stderr}"
    );
}

#[test]
fn an_ordinary_solve_succeeds_without_a_warning() {
    let dir = temp_dir("cli-constraint-finite");
    let (output, reasons) = solve(&problem(&dir, "unit", |_| 1.0));
    let stderr = stderr(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(reasons.iter().all(|r| r != "NonFinite"), "{reasons:?}");
    assert!(!stderr.contains("NonFinite"), "{stderr}");
}

/// A zero `--max-iterations` is refused by its flag, as a whole number.
#[test]
fn a_zero_iteration_limit_is_refused_by_its_flag() {
    let dir = temp_dir("cli-constraint-zero-iterations");
    let path = problem(&dir, "ordinary", |_| 1.0);
    let output = tessera()
        .args(["constraint", "solve", "--max-iterations", "0", "--problem"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("invalid --max-iterations = 0: must be at least 1"),
        "{err}"
    );
}
