//! The memory a training run needs: the estimate from the scenario alone
//! against the peak a training step measures, and the check that refuses a
//! run which cannot fit before it starts.

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use std::path::Path;

use cli_support::{ok, tessera, tiny_scenario};
use train_support::temp_dir;

/// The scenarios' directory of this repository.
fn shipped(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    root.join(name).display().to_string()
}

/// The estimate of `tessera bench train-step` lies within 10 % of the peak
/// resident set it measures, on scenarios of every kind: FNO 2-D and 3-D,
/// float64 and float32, PI-HC-MoE, PI-HC and PI-SC, a built-in PDE with a
/// solution map (Navier–Stokes) and ones defined in TOML. Each is sized so
/// that its samples' buffers, not the program, make most of the peak: then
/// leaving out one kind of buffer (the backward pass's two layer-wide
/// gradients, a sixth of a sample's) takes the estimate below 0.9.
#[test]
fn the_estimated_peak_of_a_training_step_is_the_measured_one() {
    let dir = temp_dir("memory-estimate");
    let cache = format!("data.cache_dir=\"{}\"", dir.join("cache").display());
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "quickstart.toml",
            &["grid.nx=256", "data.reference.nx=256"],
            "8",
        ),
        ("navier-stokes-small.toml", &[], "8"),
        ("allen-cahn-2d-small.toml", &["constraint.method=soft"], "8"),
        (
            "diffusion-sorption-medium.toml",
            &["model.dtype=f32", "constraint.method=hard"],
            "4",
        ),
        ("kuramoto-sivashinsky-small.toml", &["grid.nx=512"], "8"),
    ];
    let mut failures = Vec::new();
    for (scenario, overrides, batch) in cases {
        let mut command = tessera();
        command
            .args(["bench", "train-step", "--scenario"])
            .arg(shipped(scenario))
            .args(["--set", &cache, "--batch", batch, "--json"]);
        for o in overrides {
            command.args(["--set", o]);
        }
        let output = ok(command.output().unwrap());
        let stdout = String::from_utf8(output.stdout).unwrap();
        let report: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let (peak, estimate) = (
            report["peak_rss_mib"].as_f64().unwrap(),
            report["estimated_mib"].as_f64().unwrap(),
        );
        let ratio = estimate / peak;
        let line = format!(
            "{scenario} {overrides:?} batch {batch}: measured {peak:.0} MiB, \
             estimated {estimate:.0} MiB ({ratio:.2})"
        );
        eprintln!("{line}");
        if !(0.9..=1.1).contains(&ratio) {
            failures.push(line);
        }
    }
    assert!(
        failures.is_empty(),
        "estimates off:\n{}",
        failures.join("\n")
    );
}

/// A run whose estimate exceeds the memory it may use (here bounded with
/// `TESSERA_MEMORY_LIMIT`) is refused before its run directory exists,
/// naming the estimate and the bound; `--skip-memory-check` trains it; the
/// finished training reports its peak next to the estimate; a bound that is
/// not a size is an error.
#[test]
fn a_run_that_cannot_fit_is_refused_before_it_starts() {
    let dir = temp_dir("memory-check");
    let scenario = tiny_scenario(&dir, ("tiny-memory", 5), (2, 2), "", "");
    let out = dir.join("run");
    let train = |limit: &str, extra: &[&str]| {
        tessera()
            .arg("train")
            .arg(&scenario)
            .args(["--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .env("TESSERA_MEMORY_LIMIT", limit)
            .output()
            .unwrap()
    };
    // The program alone is estimated above 16 MiB.
    for command in ["train", "run"] {
        let output = tessera()
            .arg(command)
            .arg(&scenario)
            .args(["--quiet", "--out"])
            .arg(&out)
            .env("TESSERA_MEMORY_LIMIT", "16M")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{command}: trained anyway");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for part in [
            "needs about",
            "16 MiB",
            "TESSERA_MEMORY_LIMIT",
            "--skip-memory-check",
        ] {
            assert!(stderr.contains(part), "{command}: no {part:?} in {stderr}");
        }
        assert!(
            !out.exists(),
            "{command}: a refused run left {}",
            out.display()
        );
    }
    let output = ok(train("16M", &["--skip-memory-check"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("peak memory") && stderr.contains("(estimated"),
        "{stderr}"
    );
    // A generous bound lets the resume of the same run through.
    let resumed = tessera()
        .args(["train", "--quiet", "--resume"])
        .arg(&out)
        .env("TESSERA_MEMORY_LIMIT", "64G")
        .output()
        .unwrap();
    ok(resumed);
    let output = train("lots", &["--force"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TESSERA_MEMORY_LIMIT = \"lots\" is not a size"),
        "{stderr}"
    );
}
