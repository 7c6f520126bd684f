//! `tessera bench scaling` end to end on tiny sizes: the JSON report's shape
//! and consistency, the PNG, and the refusal of bad arguments. No timed
//! assertions: only that the times are positive and the ratios are theirs.

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use std::path::Path;

use cli_support::{ok, tessera};
use serde_json::Value;
use train_support::temp_dir;

/// The PNG signature.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Tiny grids and basis (with `--ny 16` for navier-stokes).
const TINY: [&str; 6] = ["--nt", "9", "--nx", "32", "--basis", "5"];

fn number(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: {value}"))
}

/// Checks one PDE's report: an entry per total and method, positive medians,
/// speed-ups that are the single medians over the MoE ones.
fn check_report(report: &Value, pde: &str, moe: &[u64]) {
    assert_eq!(report["pde"], pde);
    assert_eq!(report["repeats"], 2);
    let entries = report["entries"].as_array().unwrap();
    let speedups = report["speedups"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{report}");
    assert_eq!(speedups.len(), 2, "{report}");
    let k: u64 = moe.iter().product();
    for (pair, (speedup, total)) in entries.chunks(2).zip(speedups.iter().zip([8, 40])) {
        let (single, experts) = (&pair[0], &pair[1]);
        assert_eq!(single["method"], "single");
        assert_eq!(experts["method"], "moe");
        assert_eq!(speedup["points_total"], total);
        for (entry, split, per_expert) in [
            (single, vec![1; moe.len()], total),
            (experts, moe.to_vec(), total / k),
        ] {
            assert_eq!(entry["points_total"], total);
            assert_eq!(entry["experts"], serde_json::json!(split));
            assert_eq!(entry["points"], per_expert);
            assert_eq!(entry["fwd_runs_s"].as_array().unwrap().len(), 2);
            assert!(number(entry, "fwd_median_s") > 0.0, "{entry}");
            assert!(number(entry, "fwd_bwd_median_s") > 0.0, "{entry}");
            let iterations = entry["iterations"][0].as_array().unwrap();
            assert_eq!(iterations.len() as u64, split.iter().product::<u64>());
            assert!(iterations.iter().all(|i| i.as_u64().unwrap() >= 1));
        }
        // serde_json's float parsing may be one unit in the last place off.
        let ratio = |key: &str| number(single, key) / number(experts, key);
        for (key, median) in [
            ("inference", "fwd_median_s"),
            ("training", "fwd_bwd_median_s"),
        ] {
            let (got, want) = (number(speedup, key), ratio(median));
            assert!((got - want).abs() <= 1e-12 * want, "{key}: {got} vs {want}");
        }
    }
}

#[test]
fn scaling_writes_json_and_png_for_both_pdes() {
    let dir = temp_dir("cli-bench-scaling");
    let (json, png) = (dir.join("scaling.json"), dir.join("scaling.png"));
    let output = ok(tessera()
        .args(["bench", "scaling"])
        .args(TINY)
        .args(["--ny", "16", "--points", "8,40", "--repeats", "2", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&png)
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("speed-up"), "{stdout}");
    let reports: Vec<Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(reports.len(), 2);
    check_report(&reports[0], "diffusion-sorption", &[1, 4]);
    check_report(&reports[1], "navier-stokes", &[1, 2, 2]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(PNG_MAGIC), "not a PNG: {png:?}");
}

/// Runs the command on diffusion–sorption with `args` (`--points`,
/// `--repeats`, …) on top of the tiny sizes; it must fail with a message
/// containing `message`, and write no report.
fn refused(dir: &Path, args: &[&str], message: &str) {
    let json = dir.join("refused.json");
    let output = tessera()
        .args(["bench", "scaling"])
        .args(TINY)
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert!(!json.exists());
}

#[test]
fn scaling_refuses_bad_arguments() {
    let dir = temp_dir("cli-bench-scaling-bad");
    let ds = ["--pde", "diffusion-sorption"];
    // Fewer points than experts, and a share that would differ between experts.
    refused(
        &dir,
        &[&ds[..], &["--points", "2"]].concat(),
        "invalid --points = 2",
    );
    refused(
        &dir,
        &[&ds[..], &["--points", "8,10"]].concat(),
        "invalid --points = 10",
    );
    let zero = ["--points", "8", "--repeats", "0"];
    refused(&dir, &[&ds[..], &zero].concat(), "invalid --repeats = 0");
    // More points than the grid (9 × 32) holds.
    refused(&dir, &[&ds[..], &["--points", "4000"]].concat(), "4000");
    refused(&dir, &["--pde", "heat"], "invalid value 'heat'");
    // A 1-D PDE has no y axis to size.
    let ny = ["--points", "8", "--ny", "16"];
    refused(&dir, &[&ds[..], &ny].concat(), "invalid --ny = 16");
}

/// The output files are checked before any timing: a name that cannot be
/// written is refused by its flag, with nothing measured (no table).
#[test]
fn scaling_refuses_unwritable_outputs_before_timing() {
    let dir = temp_dir("cli-bench-scaling-out");
    for (flag, path, message) in [
        ("--plot", dir.join("out.txt"), "must end in .png"),
        ("--json", dir.clone(), "is a directory"),
        ("--json", dir.join("none").join("a.json"), "no directory"),
    ] {
        let output = tessera()
            .args(["bench", "scaling", "--pde", "diffusion-sorption"])
            .args(TINY)
            .args(["--points", "8", "--repeats", "1", flag])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!output.status.success(), "{flag} {path:?} was accepted");
        let named = format!("error: {flag} {}: {message}", path.display());
        assert!(stderr.contains(&named), "{named}: {stderr}");
        assert!(output.stdout.is_empty(), "measured first: {stderr}");
    }
}
