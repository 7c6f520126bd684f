//! `--device`: a GPU request is refused with a message that says what to do,
//! whichever part is missing (the `cuda` feature or a CUDA driver), and never
//! falls back to the CPU silently.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tessera bench constraint` on a tiny problem with `extra` arguments: the
/// exit status and stderr.
fn bench(extra: &[&str]) -> (bool, String) {
    let (ok, _, err) = bench_output(extra);
    (ok, err)
}

/// As [`bench`], with stdout.
fn bench_output(extra: &[&str]) -> (bool, String, String) {
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
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Why a GPU request fails on this machine.
fn no_gpu() -> &'static str {
    if cfg!(feature = "cuda") {
        "no CUDA driver found"
    } else {
        "built without the `cuda` feature"
    }
}

/// Without `--pde-file`, a GPU times the built-in PDE's own TOML definition
/// there: refused here only for want of a GPU.
#[test]
fn a_gpu_without_a_file_times_the_built_in_definition() {
    let (ok, err) = bench(&["--device", "cuda"]);
    assert!(!ok);
    assert!(err.contains(no_gpu()), "{err}");
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
    assert!(err.contains(no_gpu()), "{err}");
}

/// `gradcheck --pde` checks the layer where `--device` says (the PDE's own
/// definition on a GPU): refused here for want of a GPU, never run on the CPU
/// instead.
#[test]
fn gradcheck_of_a_pde_runs_on_the_device_asked_for() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gradcheck", "--pde", "heat", "--device", "cuda"])
        .args(["--nt", "5", "--nx", "16", "--points", "20", "--basis", "4"])
        .args(["--experts", "1x2", "--checks", "1"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the tessera binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "no GPU here, so no result: {err}");
    assert!(err.contains(no_gpu()), "{err}");
}

#[test]
fn unknown_devices_are_refused_by_name() {
    let (ok, err) = bench(&["--device", "tpu"]);
    assert!(!ok);
    assert!(err.contains("cpu, cuda or cuda:N"), "{err}");
}

#[test]
fn the_cpu_device_runs_the_side_by_side_benchmark() {
    let (ok, out, err) = bench_output(&[
        "--pde-file",
        "scenarios/pdes/diffusion-sorption.toml",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{err}");
    let reports: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let reports = reports.as_array().expect("one report per layer");
    assert_eq!(reports.len(), 2);
    for report in reports {
        for key in ["gpu_peak_mib", "gpu_solve_parts_s", "gpu_solve_rounds"] {
            assert_eq!(
                report.get(key),
                Some(&serde_json::Value::Null),
                "{key}: no GPU on the CPU: {report}"
            );
        }
    }
}

/// `tessera COMMAND … --device cuda` on a scenario: refused with the reason
/// before any data are generated or any step runs.
#[test]
fn a_scenario_on_a_gpu_without_a_gpu_is_refused_before_any_work() {
    let dir = std::env::temp_dir().join(format!("tessera-device-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = repo().join("scenarios/quickstart.toml");
    let cache = format!("data.cache_dir=\"{}\"", dir.join("cache").display());
    let why = no_gpu();
    let (scenario, out_dir) = (scenario.to_str().unwrap(), dir.join("run"));
    let out_dir = out_dir.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &[
            "train", scenario, "--out", out_dir, "--quiet", "--device", "cuda",
        ],
        &[
            "run",
            scenario,
            "--out",
            out_dir,
            "--quiet",
            "--set",
            "device=cuda:0",
        ],
        &["gradcheck", "--scenario", scenario, "--device", "cuda:1"],
        &[
            "bench",
            "train-step",
            "--scenario",
            scenario,
            "--set",
            "device=cuda",
        ],
    ];
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .args(["--set", &cache])
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("the tessera binary runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(
            !dir.join("cache").exists(),
            "{args:?}: no data were generated"
        );
        std::fs::remove_dir_all(out_dir).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `tessera devices` with `extra` arguments and `--json`: the exit status,
/// the parsed report (when it succeeded) and stderr.
fn devices(extra: &[&str]) -> (bool, Option<serde_json::Value>, String) {
    devices_with(extra, None)
}

/// [`devices`] with `TESSERA_NVRTC_FMAD` set to `fmad` (unset for `None`).
fn devices_with(extra: &[&str], fmad: Option<&str>) -> (bool, Option<serde_json::Value>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    match fmad {
        Some(value) => command.env("TESSERA_NVRTC_FMAD", value),
        None => command.env_remove("TESSERA_NVRTC_FMAD"),
    };
    let out = command
        .args(["devices", "--json"])
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the tessera binary runs");
    let report = out
        .status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("a JSON report"));
    (
        out.status.success(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The inventory says what this build holds, and where there is no GPU the
/// CUDA side says why; a machine with CI's tools reports their NVRTC.
#[test]
fn devices_says_what_the_build_and_the_machine_offer() {
    let (ok, report, err) = devices(&[]);
    assert!(ok, "{err}");
    let report = report.unwrap();
    let features: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        features.contains(&"cuda"),
        cfg!(feature = "cuda"),
        "{report}"
    );
    assert!(report["cpu_threads"].as_u64().unwrap() >= 1);
    assert!(report["check"].is_null(), "no check without --device");
    let cuda = &report["cuda"];
    if !cfg!(feature = "cuda") {
        assert!(cuda.is_null(), "{report}");
        return;
    }
    match cuda["driver"].get("unavailable") {
        Some(why) => {
            assert!(why.as_str().unwrap().contains(no_gpu()), "{report}");
            assert_eq!(cuda["gpus"].as_array().unwrap().len(), 0, "{report}");
        }
        None => assert!(cuda["driver"]["available"].is_string(), "{report}"),
    }
    if std::env::var("TESSERA_REQUIRE_CUDA_TOOLS").is_ok_and(|v| v == "1") {
        let nvrtc = cuda["nvrtc"]["available"].as_str();
        assert!(nvrtc.is_some_and(|v| v.starts_with("13.")), "{report}");
    }
}

/// The report says whether NVRTC fuses multiply-adds, as
/// `TESSERA_NVRTC_FMAD` asks, and names the variable when it is misspelt.
#[test]
fn devices_says_whether_nvrtc_fuses_multiply_adds() {
    for (fmad, expected) in [
        (None, "fused"),
        (Some("1"), "fused"),
        (Some("0"), "separate"),
    ] {
        let (ok, report, err) = devices_with(&[], fmad);
        assert!(ok, "{err}");
        let cuda = &report.unwrap()["cuda"];
        if !cfg!(feature = "cuda") {
            assert!(cuda.is_null(), "{cuda}");
            return;
        }
        assert_eq!(
            cuda["nvrtc_contraction"]["available"], expected,
            "{fmad:?}: {cuda}"
        );
    }
    let (ok, report, err) = devices_with(&[], Some("no"));
    assert!(ok, "{err}");
    let why = &report.unwrap()["cuda"]["nvrtc_contraction"]["unavailable"];
    assert!(
        why.as_str()
            .is_some_and(|w| w.contains("TESSERA_NVRTC_FMAD")),
        "{why}"
    );
}

/// The preflight check on the CPU compares the CPU with itself: the
/// quickstart's two samples, four experts each, the same fields.
#[test]
fn devices_checks_the_cpu() {
    let (ok, report, err) = devices(&["--device", "cpu"]);
    assert!(ok, "{err}");
    let check = &report.unwrap()["check"];
    assert_eq!(check["scenario"], "quickstart", "{check}");
    assert_eq!(check["solves"], "cpu", "{check}");
    assert_eq!(check["solves_total"], 2 * 4, "{check}");
    assert_eq!(check["max_rel_diff"], 0.0, "{check}");
    assert!(check["copies"].is_null(), "no copies to measure: {check}");
}

/// On a GPU the check builds the quickstart's model there and agrees with
/// the CPU; without one it fails and says why.
#[test]
fn devices_checks_a_gpu_or_says_why_not() {
    let (ok, report, err) = devices(&["--device", "cuda"]);
    if !ok {
        assert!(err.contains(no_gpu()), "{err}");
        println!("skipped the GPU check: {}", no_gpu());
        return;
    }
    let check = &report.unwrap()["check"];
    assert_eq!(check["solves"], "gpu", "{check}");
    assert_eq!(check["pde_loss"], "gpu", "{check}");
    assert!(check["max_rel_diff"].as_f64().unwrap() <= 1e-8, "{check}");
    // The copies' rates there, through the staging buffers and the driver's.
    let copies = &check["copies"];
    assert_eq!(copies["exact"], true, "{copies}");
    for rate in [
        "up_staged_gb_s",
        "up_driver_gb_s",
        "down_staged_gb_s",
        "down_driver_gb_s",
    ] {
        assert!(copies[rate].as_f64().is_some_and(|r| r > 0.0), "{copies}");
    }
}

/// On a GPU, the constraint benchmark reports the CPU layer and three GPU
/// layers on the same problems: everything on the device, `u` and the
/// pull-back on the host, and the term rows built on the host too; the
/// GPU layers' problems converge as the CPU's. Without one, it says why.
#[test]
fn the_constraint_benchmark_on_a_gpu_times_each_path_or_says_why_not() {
    let (ok, out, err) = bench_output(&["--device", "cuda", "--json"]);
    if !ok {
        assert!(err.contains(no_gpu()), "{err}");
        println!("skipped the GPU benchmark: {}", no_gpu());
        return;
    }
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pde"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "diffusion-sorption",
            "custom (TOML, GPU solves)",
            "custom (TOML, GPU solves, u and pull-back on the host)",
            "custom (TOML, GPU solves, term rows from the host)",
        ]
    );
    for report in reports.as_array().unwrap() {
        assert_eq!(report["converged"], true, "{report}");
    }
}
