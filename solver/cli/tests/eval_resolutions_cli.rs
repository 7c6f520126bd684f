//! `tessera run` and `tessera eval` of a tiny Navier–Stokes run evaluated at
//! two resolutions (`eval.resolutions`): a summary row and a box per
//! resolution, the model's own grid giving the headline errors; `eval
//! --set` under other evaluation settings.

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use cli_support::{ok, tessera};
use tessera_solver::{RunDir, Summary};
use train_support::temp_dir;

/// A 4 × 8 × 8 Navier–Stokes run whose test split is stored at 16².
const SCENARIO: &str = r#"
name = "tiny-ns-resolutions"
seed = 2
[pde]
kind = "navier-stokes"
[grid]
nt = 4
nx = 8
ny = 8
t_max = 0.1
[data]
train_samples = 2
test_samples = 2
[data.reference]
resolution = 16
dt = 1e-2
[model]
widths = [4, 5]
modes = [1, 2, 2]
fc_dim = 6
n_basis = 5
[constraint]
method = "moe"
experts = [1, 2, 2]
points = 10
init = "zeros"
[training]
steps = 2
batch_size = 2
validate_every = 2
validate_samples = 1
[eval]
resolutions = [8, 16]
plots = 1
"#;

#[test]
fn run_and_eval_report_every_resolution_with_a_box_plot() {
    let dir = temp_dir("cli-resolutions");
    let scenario = dir.join("tiny-ns.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join("run");
    let output = ok(tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("8²:") && stdout.contains("16²:"),
        "{stdout}"
    );
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let rows = line["resolutions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{line}");
    assert_eq!(rows[1]["resolution"], 16);

    let run = RunDir::new(&out);
    let read =
        || -> Summary { serde_json::from_slice(&std::fs::read(run.summary()).unwrap()).unwrap() };
    let trained = read();
    let resolutions: Vec<usize> = trained.resolutions.iter().map(|r| r.resolution).collect();
    assert_eq!(resolutions, [8, 16]);
    for r in &trained.resolutions {
        assert_eq!(r.rel_l2.len(), 2);
        assert!(r.rel_l2.iter().all(|e| e.is_finite() && *e > 0.0), "{r:?}");
    }
    // The model's grid is 8²: that row is the headline evaluation.
    assert_eq!(trained.resolutions[0].rel_l2, trained.rel_l2);
    assert_ne!(trained.resolutions[1].rel_l2, trained.rel_l2);
    let plot = run.plots().join("resolutions.png");
    let image = image::open(&plot).expect("a decodable box plot");
    assert_eq!((image.width(), image.height()), (800, 600));

    // `eval` of the saved run repeats the evaluation.
    std::fs::remove_file(&plot).unwrap();
    ok(tessera()
        .arg("eval")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap());
    assert_eq!(read().resolutions, trained.resolutions);
    assert!(plot.exists());

    // `eval --set` evaluates the same model under other evaluation settings:
    // the first sample at 16² alone gives that sample's error of the whole
    // evaluation (its sampled points and its chunk of one are the same).
    ok(tessera()
        .arg("eval")
        .arg(&out)
        .args(["--quiet", "--set", "eval.samples=1"])
        .args(["--set", "eval.resolutions=[16]"])
        .output()
        .unwrap());
    let one = read();
    assert_eq!(one.rel_l2, trained.rel_l2[..1]);
    assert_eq!(one.resolutions.len(), 1);
    assert_eq!(one.resolutions[0].resolution, 16);
    assert_eq!(
        one.resolutions[0].rel_l2,
        trained.resolutions[1].rel_l2[..1]
    );
    // The model's settings are the trained ones: one that changes the
    // variables' shapes and one that changes only what they compute are
    // refused alike; an invalid setting by the scenario's validation.
    for (assignment, expected) in [
        (
            "model.n_basis=6",
            "--set model.n_basis=6: the model's settings",
        ),
        (
            "model.activate_last_layer=true",
            "--set model.activate_last_layer=true: the model's settings",
        ),
        ("eval.samples=0", "eval.samples"),
    ] {
        let output = tessera()
            .arg("eval")
            .arg(&out)
            .args(["--quiet", "--set", assignment])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{assignment} was accepted");
        assert!(stderr.contains(expected), "{assignment}: {stderr}");
    }
}
