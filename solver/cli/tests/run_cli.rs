//! The `tessera` binary end to end: `--set` errors, a training run killed
//! with SIGKILL after its first checkpoint and resumed, which must end with the
//! same metrics and test error as an uninterrupted run, and runs split by
//! `--max-time`.

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cli_support::{
    ok, records, stop_on_time_limit, tessera, tiny_scenario, train_until_checkpoint,
};
use tessera_solver::{Checkpoint, RunDir, StopReason, Summary};
use train_support::{damage_a_variable, temp_dir};

const STEPS: usize = 120;

/// The tiny run of these tests.
fn scenario_file(dir: &Path) -> PathBuf {
    tiny_scenario(dir, ("tiny-cli", 4), (STEPS, 40), "", "")
}

fn eval_summary(run: &Path) -> Summary {
    let output = ok(tessera()
        .arg("eval")
        .arg(run)
        .arg("--quiet")
        .output()
        .unwrap());
    assert!(!output.stdout.is_empty());
    serde_json::from_slice(&std::fs::read(RunDir::new(run).summary()).unwrap()).unwrap()
}

#[test]
fn set_errors_name_the_key() {
    let dir = temp_dir("cli-set");
    let scenario = scenario_file(&dir);
    for (assignment, expected) in [
        ("training.nope=1", "training.nope"),
        ("training.batch_size=1000", "exceeds data.train_samples"),
        ("constraint.method=banana", "constraint.method"),
        ("no_equals_sign", "key=value"),
    ] {
        let output = tessera()
            .arg("run")
            .arg(&scenario)
            .args(["--set", assignment, "--out"])
            .arg(dir.join("never"))
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{assignment} was accepted");
        assert!(stderr.contains(expected), "{assignment}: {stderr}");
        // The error's own report, not its `Debug` form, which repeats each
        // cause and adds a stack trace where backtraces are on.
        assert!(stderr.starts_with("error: "), "{assignment}: {stderr}");
        assert!(
            !stderr.contains("Caused by") && !stderr.contains("backtrace"),
            "{assignment}: {stderr}"
        );
        assert!(
            !dir.join("never").exists(),
            "nothing is written on a bad --set"
        );
    }
    // Two wrong values are named in one report, one per line.
    let output = tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "grid.nt=1", "--set", "training.lr=-1", "--out"])
        .arg(dir.join("never"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("2 invalid settings:"), "{stderr}");
    assert!(stderr.contains("\n  `grid.nt` = 1: "), "{stderr}");
    assert!(stderr.contains("\n  `training.lr` = -1: "), "{stderr}");
}

#[test]
fn sigkill_and_resume_match_an_uninterrupted_run() {
    let dir = temp_dir("cli-resume");
    let scenario = scenario_file(&dir);
    let (straight, killed) = (dir.join("straight"), dir.join("killed"));
    ok(tessera()
        .arg("train")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(&straight)
        .output()
        .unwrap());

    let mut child = train_until_checkpoint(
        &mut tessera(),
        &scenario,
        &killed,
        Stdio::null(),
        Duration::from_secs(30),
    );
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let done = RunDir::new(&killed).read_metrics().unwrap().len();
    assert!(
        done < STEPS,
        "the run finished before it was killed ({done} steps)"
    );

    ok(tessera()
        .arg("train")
        .arg("--quiet")
        .arg("--resume")
        .arg(&killed)
        .output()
        .unwrap());
    let a = records(&straight);
    let b = records(&killed);
    assert_eq!(a.len(), STEPS);
    assert_eq!(a, b);
    let (sa, sb) = (eval_summary(&straight), eval_summary(&killed));
    assert_eq!(sa.rel_l2, sb.rel_l2);
    assert_eq!(sa.steps, STEPS);
    assert_eq!(sa.failed_solves, sb.failed_solves);
}

/// A run whose latest checkpoint is damaged: `eval` refuses it, naming the
/// damaged tensor and the resume that trains again from the checkpoint kept
/// before it; that resume says on stderr which checkpoint it took (step 115
/// of 120) and ends with the metrics and test error the run had.
#[test]
fn a_damaged_checkpoint_is_refused_by_eval_and_resumed_from_the_one_before() {
    let dir = temp_dir("cli-damaged");
    let run = dir.join("run");
    ok(tessera()
        .arg("train")
        .arg(scenario_file(&dir))
        .args(["--quiet", "--out"])
        .arg(&run)
        .output()
        .unwrap());
    let before = (records(&run), eval_summary(&run).rel_l2);
    let files = RunDir::new(&run);
    damage_a_variable(&files.checkpoint());
    let refused = tessera()
        .arg("eval")
        .arg(&run)
        .arg("--quiet")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("tessera train --resume"), "{stderr}");
    assert!(
        stderr.contains("checkpoint.previous.safetensors"),
        "{stderr}"
    );

    let resumed = ok(tessera()
        .args(["train", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap());
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("resuming from the checkpoint before it"),
        "{stderr}"
    );
    assert!(stderr.contains("(step 115)"), "{stderr}");
    assert_eq!((records(&run), eval_summary(&run).rel_l2), before);
}

/// A resume continues the run's own experiment: `--set` overrides that
/// change it are refused (they were once ignored without a word), malformed
/// ones are errors, and ones that change nothing are taken.
#[test]
fn a_resume_refuses_overrides_that_change_the_run() {
    let dir = temp_dir("cli-resume-set");
    let run = dir.join("run");
    ok(tessera()
        .arg("train")
        .arg(scenario_file(&dir))
        .args(["--quiet", "--set", "training.steps=10", "--out"])
        .arg(&run)
        .output()
        .unwrap());
    let resume = |set: &str| {
        tessera()
            .args(["train", "--quiet", "--resume"])
            .arg(&run)
            .args(["--set", set])
            .output()
            .unwrap()
    };
    for (set, said) in [
        ("training.steps=20", "differs from"),
        ("model.widths=[4, 8, 8]", "differs from"),
        ("not an override", "not an override"),
    ] {
        let refused = resume(set);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{set}");
        assert!(stderr.contains(said), "{set}: {stderr}");
    }
    assert_eq!(records(&run).len(), 10, "nothing trained");
    ok(resume("training.steps=10"));
}

/// Data paths given relative to the working directory are saved absolute
/// in the run's config, so that the run resumes and evaluates from any
/// directory; before, a resume elsewhere looked for the training file
/// there.
#[test]
fn relative_data_paths_are_saved_as_the_working_directory_resolved_them() {
    let dir = temp_dir("cli-relative-data");
    let scenario = scenario_file(&dir);
    ok(tessera()
        .current_dir(&dir)
        .arg("generate")
        .arg(&scenario)
        .args(["--quiet", "--out", "train.safetensors"])
        .output()
        .unwrap());
    ok(tessera()
        .current_dir(&dir)
        .arg("train")
        .arg(&scenario)
        .args(["--quiet", "--set", "training.steps=2", "--set"])
        .arg("data.train_file=\"train.safetensors\"")
        .args(["--out", "run"])
        .output()
        .unwrap());
    let run = RunDir::new(dir.join("run"));
    let saved = run.read_config().unwrap();
    assert_eq!(saved.data.train_file, Some(dir.join("train.safetensors")));
    let config = std::fs::read_to_string(run.config()).unwrap();
    std::fs::write(
        run.config(),
        config.replace("\nsteps = 2\n", "\nsteps = 3\n"),
    )
    .unwrap();
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    ok(tessera()
        .current_dir(&elsewhere)
        .args(["train", "--quiet", "--resume"])
        .arg(run.root())
        .output()
        .unwrap());
    assert_eq!(records(run.root()).len(), 3);
}

/// A zero `--batch` is refused by its flag, not by the two scenario
/// settings it fills.
#[test]
fn bench_train_step_refuses_a_zero_batch_by_its_flag() {
    let dir = temp_dir("cli-bench-zero-batch");
    let output = tessera()
        .args(["bench", "train-step", "--batch", "0", "--scenario"])
        .arg(scenario_file(&dir))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("invalid --batch = 0: must be at least 1"),
        "{stderr}"
    );
}

#[test]
fn bench_train_step_reports_time_memory_and_iterations() {
    let dir = temp_dir("cli-bench");
    let scenario = scenario_file(&dir);
    let output = ok(tessera()
        .args(["bench", "train-step", "--scenario"])
        .arg(&scenario)
        // Smaller than the scenario's batch size of 2.
        .args(["--batch", "1", "--json"])
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let number = |key: &str| {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert!(number("step_median_s") > 0.0);
    assert!(number("peak_rss_mib") > 1.0);
    assert!(number("estimated_mib") > 1.0);
    for key in [
        "gpu_peak_mib",
        "gpu_solve_parts_s",
        "gpu_solve_rounds",
        "gpu_backbone_parts_s",
    ] {
        assert_eq!(
            report.get(key),
            Some(&serde_json::Value::Null),
            "{key}: no GPU on the CPU"
        );
    }
    // Every PI-HC-MoE step runs Levenberg–Marquardt at least once per expert.
    assert!(number("lm_iterations_mean") >= 1.0);
    assert_eq!(report["step_times_s"].as_array().unwrap().len(), 5);
    // One process: the whole batch here, nothing sent.
    assert_eq!(number("ranks"), 1.0);
    assert_eq!(number("comm_bytes_per_step"), 0.0);
    assert_eq!(report["device"], "cpu");
    assert_eq!(report["solves"], "cpu", "a hard constraint on the CPU");
    assert_eq!(report["pde_loss"], "cpu");
    // Every phase of a PI-HC-MoE step takes time, and what the phases leave
    // out of a step is never negative.
    let phases = report["phases_median_s"].as_object().unwrap();
    let names = [
        "backbone_forward",
        "solves",
        "losses",
        "constraint_backward",
        "backbone_backward",
        "optimiser",
    ];
    for name in names {
        assert!(phases[name].as_f64().unwrap() > 0.0, "{name}: {report}");
    }
    assert!(phases["other"].as_f64().unwrap() >= 0.0, "{report}");
    assert_eq!(phases.len(), names.len() + 1, "{report}");
    // Up to the last bit, which the JSON float parser may not keep.
    let expected = 1.0 / number("step_median_s");
    assert!((number("samples_per_s") - expected).abs() <= 1e-12 * expected);
    let output = tessera()
        .args(["bench", "train-step", "--scenario"])
        .arg(&scenario)
        .args(["--runs", "3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn run_writes_the_run_directory_and_a_json_summary_line() {
    let dir = temp_dir("cli-run");
    let scenario = scenario_file(&dir);
    let out = dir.join("run");
    let output = ok(tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "training.steps=3", "--quiet", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(line["method"], "moe");
    assert_eq!(line["steps"], 3);
    for key in [
        "rel_l2_mean",
        "rel_l2_std",
        "seconds",
        "failed_solves",
        "peak_memory_mib",
    ] {
        assert!(line[key].is_number(), "{key}: {line}");
    }
    let run = RunDir::new(&out);
    let summary: Summary = serde_json::from_slice(&std::fs::read(run.summary()).unwrap()).unwrap();
    assert_eq!(summary.rel_l2_mean, line["rel_l2_mean"].as_f64().unwrap());
    assert_eq!(summary.rel_l2.len(), 2);
    // One initial amplitude per evaluated sample; the tiny scenario's initial
    // values are constants drawn in (0, 0.2].
    assert_eq!(summary.initial_rms.len(), 2);
    assert!(
        summary.initial_rms.iter().all(|&a| a > 0.0 && a <= 0.2),
        "{:?}",
        summary.initial_rms
    );
    // The physics losses of the predictions and of the truth, one PDE norm per
    // time level, in the summary and (the whole-grid values) in the JSON line.
    let physics = summary.physics.expect("physics losses in summary.json");
    let levels = run.read_config().unwrap().dims()[0];
    for (losses, key) in [
        (&physics.prediction, "pde_loss"),
        (&physics.truth, "pde_loss_truth"),
    ] {
        assert_eq!(losses.pde_levels.len(), levels);
        assert!(losses.pde > 0.0 && losses.pde.is_finite());
        assert_eq!(line[key].as_f64(), Some(losses.pde));
    }
    // The persistence baseline on the same samples, in both (its values are
    // checked against a hand computation in the library's unit tests).
    let persistence = summary.persistence.expect("persistence in summary.json");
    assert_eq!(persistence.rel_l2.len(), 2);
    assert!(persistence.rel_l2.iter().all(|e| e.is_finite() && *e > 0.0));
    assert_eq!(
        line["persistence_rel_l2_mean"].as_f64(),
        Some(persistence.mean)
    );
    // The saved config is the scenario with the override applied.
    assert_eq!(run.read_config().unwrap().training.steps, 3);
    for file in [
        run.metrics(),
        run.checkpoint(),
        run.plots().join("loss.png"),
        run.plots().join("sample_0000.png"),
    ] {
        assert!(file.exists(), "{} missing", file.display());
    }
}

/// `tessera floor` minimises the tiny scenario's training loss from its test
/// trajectories: the JSON report has one distance per trajectory and a loss
/// below the truth's, the text says what it measured, and asking for more
/// trajectories than the test split holds is refused by name.
#[test]
fn floor_reports_the_distance_of_the_loss_minimiser_from_the_truth() {
    let dir = temp_dir("cli-floor");
    let scenario = scenario_file(&dir);
    let floor = |extra: &[&str]| {
        tessera()
            .arg("floor")
            .arg(&scenario)
            .args(["--samples", "2", "--iterations", "300", "--quiet"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = ok(floor(&["--json"]));
    let report: tessera_solver::PhysicsFloor = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.rel_l2.len(), 2);
    assert!(
        report.rel_l2.iter().all(|r| *r > 0.0 && r.is_finite()),
        "{report:?}"
    );
    assert!(report.loss < report.loss_truth, "{report:?}");
    assert_eq!(report.truth.pde_levels.len(), 8);
    let text = String::from_utf8(ok(floor(&[])).stdout).unwrap();
    assert!(text.contains("distance from the truth"), "{text}");
    let refused = tessera()
        .arg("floor")
        .arg(&scenario)
        .args(["--samples", "3", "--quiet"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("floor samples"), "{stderr}");
}

#[test]
fn a_used_or_locked_run_directory_is_refused() {
    let dir = temp_dir("cli-claim");
    let scenario = scenario_file(&dir);
    let out = dir.join("run");
    let train = |extra: &[&str]| {
        tessera()
            .arg("train")
            .arg(&scenario)
            .args(["--set", "training.steps=2", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    ok(train(&[]));
    let metrics = std::fs::read(RunDir::new(&out).metrics()).unwrap();
    let again = train(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "a second run replaced the first");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(std::fs::read(RunDir::new(&out).metrics()).unwrap(), metrics);
    ok(train(&["--force"]));

    // While another process holds the lock, even --force is refused at once.
    let lock = RunDir::new(&out)
        .claim(tessera_solver::Claim {
            resume: true,
            force: false,
        })
        .unwrap();
    let held = train(&["--force"]);
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert!(!held.status.success());
    assert!(
        stderr.contains(&format!("process {}", std::process::id())),
        "{stderr}"
    );
    // So is an evaluation that would write its summary there; one written
    // elsewhere reads the latest checkpoint.
    let eval = |extra: &[&str]| {
        let mut command = tessera();
        command.arg("eval").arg(&out).arg("--quiet").args(extra);
        command.output().unwrap()
    };
    let held = eval(&[]);
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert!(!held.status.success());
    assert!(
        stderr.contains("--out DIR") && stderr.contains(&format!("process {}", std::process::id())),
        "{stderr}"
    );
    assert!(!RunDir::new(&out).summary().exists());
    let elsewhere = dir.join("elsewhere");
    ok(eval(&["--out", elsewhere.to_str().unwrap()]));
    assert!(RunDir::new(&elsewhere).summary().exists());
    drop(lock);
}

#[test]
fn a_launch_without_mpi_support_is_refused() {
    if cfg!(feature = "mpi") {
        return;
    }
    let dir = temp_dir("cli-launch");
    let scenario = scenario_file(&dir);
    let output = tessera()
        .arg("train")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(dir.join("run"))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--features mpi"), "{stderr}");
    assert!(!dir.join("run").exists(), "nothing is written");
}

/// A tiny run long enough (thousands of steps, several seconds) that a
/// one-second `--max-time` stops it early on any machine.
fn long_scenario(dir: &Path) -> (PathBuf, usize) {
    let steps = 3000;
    (
        tiny_scenario(dir, ("tiny-long", 4), (steps, 1000), "", ""),
        steps,
    )
}

#[test]
fn max_time_stops_at_a_fresh_checkpoint_that_resume_finishes() {
    let dir = temp_dir("cli-max-time");
    let (scenario, steps) = long_scenario(&dir);
    let out = dir.join("run");
    let (stderr, stopped) = stop_on_time_limit(&mut tessera(), "train", &scenario, "1s", &out);
    let run = RunDir::new(&out);
    assert!(stopped < steps, "not stopped early: {stderr}");
    // The checkpoint is of the last step done, which the metrics mark.
    let records = run.read_metrics().unwrap();
    assert_eq!(records.len(), stopped);
    assert_eq!(records[stopped - 1].stopped, Some(StopReason::TimeLimit));
    assert!(
        stderr.contains(&format!("at step {stopped} of {steps}")),
        "{stderr}"
    );
    let resume = format!("train --resume {}", out.display());
    assert!(stderr.contains(&resume), "{stderr}");

    resume_to_the_end(&out, steps, stopped);
}

/// Resumes the run in `out` that stopped after step `stopped` to its last,
/// `steps`: the checkpoint and the metrics reach it, and only the step it
/// stopped at is marked.
fn resume_to_the_end(out: &Path, steps: usize, stopped: usize) {
    ok(tessera()
        .args(["train", "--quiet", "--resume"])
        .arg(out)
        .output()
        .unwrap());
    let run = RunDir::new(out);
    assert_eq!(
        Checkpoint::load(&run.checkpoint()).unwrap().totals.step,
        steps
    );
    let records = run.read_metrics().unwrap();
    assert_eq!(records.len(), steps);
    let marked: Vec<usize> = records
        .iter()
        .filter(|r| r.stopped.is_some())
        .map(|r| r.step)
        .collect();
    assert_eq!(marked, [stopped]);
}

/// SIGTERM (what a cluster sends before it ends a job) stops `tessera run`
/// after the step in progress, at a checkpoint of it that the metrics mark,
/// skips the evaluation, says how to continue and exits with 128 + 15; the
/// resume finishes the run with the stop marked where it happened.
#[test]
fn sigterm_stops_at_a_checkpoint_of_the_step_in_progress() {
    let dir = temp_dir("cli-sigterm");
    let (scenario, steps) = long_scenario(&dir);
    let out = dir.join("run");
    let child = tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !RunDir::new(&out).checkpoint().exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: sending SIGTERM to a process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128 + libc::SIGTERM), "{stderr}");
    let run = RunDir::new(&out);
    let stopped = Checkpoint::load(&run.checkpoint()).unwrap().totals.step;
    assert!(stopped < steps, "{stderr}");
    let records = run.read_metrics().unwrap();
    assert_eq!(records.len(), stopped);
    assert_eq!(records[stopped - 1].stopped, Some(StopReason::Interrupted));
    let said = format!("stopped by SIGTERM at step {stopped} of {steps}");
    assert!(stderr.contains(&said), "{stderr}");
    assert!(
        stderr.contains(&format!("train --resume {}", out.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("eval {}", out.display())),
        "{stderr}"
    );
    assert!(
        !run.summary().exists(),
        "no evaluation of a half-trained model"
    );

    resume_to_the_end(&out, steps, stopped);
}

#[test]
fn run_stopped_by_max_time_skips_the_evaluation_and_says_how_to_finish() {
    let dir = temp_dir("cli-run-max-time");
    let (scenario, steps) = long_scenario(&dir);
    let out = dir.join("run");
    let (stderr, stopped) = stop_on_time_limit(&mut tessera(), "run", &scenario, "1s", &out);
    let run = RunDir::new(&out);
    assert!(stopped < steps);
    assert!(!run.summary().exists(), "a half-trained run was evaluated");
    for command in [
        format!("train --resume {}", out.display()),
        format!("eval {}", out.display()),
    ] {
        assert!(stderr.contains(&command), "{command}: {stderr}");
    }
}

#[test]
fn a_bad_max_time_is_refused_before_any_work() {
    let dir = temp_dir("cli-bad-max-time");
    let scenario = scenario_file(&dir);
    for command in ["train", "run"] {
        for (text, expected) in [
            ("90", "needs a unit"),
            ("2x", "unknown unit"),
            ("0s", "zero"),
        ] {
            let output = tessera()
                .arg(command)
                .arg(&scenario)
                .args(["--max-time", text, "--out"])
                .arg(dir.join("never"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{command} --max-time {text}");
            assert!(stderr.contains("--max-time"), "{stderr}");
            assert!(stderr.contains(expected), "{text}: {stderr}");
            assert!(!dir.join("never").exists(), "nothing is written");
        }
    }
}

#[test]
fn a_horizon_run_trains_on_the_window_and_reports_both_windows() {
    let dir = temp_dir("cli-horizon");
    let scenario = scenario_file(&dir);
    let out = dir.join("run");
    // The tiny grid's levels are 500/7 apart: t ≤ 300 keeps five of eight.
    let output = ok(tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "training.steps=6", "--set", "training.horizon=300"])
        .args(["--quiet", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let run = RunDir::new(&out);
    assert_eq!(run.read_config().unwrap().training.horizon, Some(300.0));
    let summary: Summary = serde_json::from_slice(&std::fs::read(run.summary()).unwrap()).unwrap();
    // Evaluated on the whole grid, split after the trained levels.
    assert_eq!(summary.grid, [8, 16]);
    let windows = summary.windows.clone().expect("window errors");
    assert_eq!((windows.horizon, windows.levels), (300.0, 5));
    for (window, key) in [
        (&windows.in_window, "in_window_rel_l2_mean"),
        (&windows.extrapolated, "extrapolated_rel_l2_mean"),
    ] {
        assert_eq!(window.rel_l2.len(), 2);
        assert!(window.rel_l2.iter().all(|e| e.is_finite() && *e > 0.0));
        assert!(window.mean.is_finite() && window.std.is_finite());
        assert_eq!(line[key].as_f64(), Some(window.mean), "{line}");
    }
    // `eval` rebuilds the whole-grid model from the checkpoint: same result.
    assert_eq!(eval_summary(&out).windows, Some(windows));
}

/// `tessera eval` with other settings says so in the summary it writes, and
/// with `--out` writes it elsewhere, leaving the run's own evaluation as it
/// was; a re-evaluation that changes nothing writes the run's result again.
#[test]
fn an_evaluation_with_other_settings_is_recorded_and_can_go_elsewhere() {
    let dir = temp_dir("cli-eval-out");
    let scenario = scenario_file(&dir);
    let out = dir.join("run");
    ok(tessera()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "training.steps=3", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let run = RunDir::new(&out);
    let own = std::fs::read(run.summary()).unwrap();
    let own_summary: Summary = serde_json::from_slice(&own).unwrap();
    assert_eq!(own_summary.evaluated_with, None);
    let elsewhere = dir.join("one-sample");
    let output = ok(tessera()
        .arg("eval")
        .arg(&out)
        .args(["--set", "eval.samples=1", "--quiet", "--json", "--out"])
        .arg(&elsewhere)
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("evaluated with  --set eval.samples=1"),
        "{stdout}"
    );
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(line["evaluated_with"]["overrides"][0], "eval.samples=1");
    let other = RunDir::new(&elsewhere);
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(other.summary()).unwrap()).unwrap();
    assert_eq!(summary.rel_l2, own_summary.rel_l2[..1]);
    let with = summary.evaluated_with.expect("recorded");
    assert_eq!(
        (with.data, with.overrides),
        (None, vec!["eval.samples=1".to_owned()])
    );
    assert!(other.plots().join("sample_0000.png").exists());
    assert_eq!(
        std::fs::read(run.summary()).unwrap(),
        own,
        "the run's summary stayed"
    );
    // Into the run directory itself, the override is recorded there.
    let again = eval_summary_with(&out, &["--set", "eval.samples=1"]);
    assert!(again.evaluated_with.is_some());
    // Without changes, the run's own result again.
    let plain = eval_summary(&out);
    assert_eq!(
        (plain.evaluated_with, plain.rel_l2),
        (None, own_summary.rel_l2)
    );
    // Another run's directory is not a place for this evaluation; the run's
    // own is, however it is spelled.
    let itself = tessera()
        .arg("eval")
        .arg(elsewhere.join("..").join("run"))
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        itself.status.success(),
        "{}",
        String::from_utf8_lossy(&itself.stderr)
    );
    let second = dir.join("second");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::copy(run.checkpoint(), RunDir::new(&second).checkpoint()).unwrap();
    let refused = tessera()
        .arg("eval")
        .arg(&out)
        .args(["--quiet", "--out"])
        .arg(&second)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("that directory holds a run"), "{err}");
}

fn eval_summary_with(run: &Path, args: &[&str]) -> Summary {
    ok(tessera()
        .arg("eval")
        .arg(run)
        .args(args)
        .arg("--quiet")
        .output()
        .unwrap());
    serde_json::from_slice(&std::fs::read(RunDir::new(run).summary()).unwrap()).unwrap()
}

/// Every command that writes into a run directory appends its line to
/// `provenance.jsonl` (which build, where, from which command line, when),
/// and a fresh start with `--force` starts the record anew.
#[test]
fn each_command_appends_its_provenance_record() {
    let dir = temp_dir("cli-provenance");
    let scenario = scenario_file(&dir);
    let out = dir.join("run");
    let run = |extra: &[&str]| {
        ok(tessera()
            .arg("run")
            .arg(&scenario)
            .args(["--set", "training.steps=3", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap())
    };
    run(&[]);
    ok(tessera()
        .arg("eval")
        .arg(&out)
        .args(["--quiet", "--set", "eval.samples=1"])
        .output()
        .unwrap());
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(RunDir::new(&out).provenance())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let lines = records();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, command) in lines.iter().zip(["run", "eval"]) {
        assert_eq!(line["command"][1], command, "{line}");
        assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(line["ranks"], 1);
        assert_eq!(line["device"], "cpu");
        assert!(line["threads"].as_u64().unwrap() >= 1);
        assert!(line["features"].is_array() && line["host"].is_string());
        // RFC 3339 in UTC: 2026-12-07T03:55:58Z.
        let started = line["started"].as_str().unwrap();
        let shape: String = started
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        assert_eq!(shape, "0000-00-00T00:00:00Z", "{started}");
        // A commit where the binary was built in a checkout, else null.
        let commit = &line["commit"];
        assert!(
            commit.is_null()
                || commit
                    .as_str()
                    .is_some_and(|c| c.len() == 12 && c.chars().all(|d| d.is_ascii_hexdigit())),
            "{commit}"
        );
    }
    assert!(
        lines[1]["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "eval.samples=1")
    );
    run(&["--force"]);
    assert_eq!(records().len(), 1, "a fresh start records itself alone");
}

/// `tessera runs` lists each run directory of a folder with what its files
/// say (scenario, method, steps, errors, start), marks a summary of other
/// settings, lists a directory it cannot read with the reason, and skips
/// folders that are not runs.
#[test]
fn runs_lists_each_run_with_what_its_files_say() {
    let dir = temp_dir("cli-runs");
    let scenario = scenario_file(&dir);
    let runs = dir.join("runs");
    for method in ["moe", "hard"] {
        ok(tessera()
            .arg("run")
            .arg(&scenario)
            .args(["--quiet", "--set", "training.steps=3", "--set"])
            .arg(format!("constraint.method={method}"))
            .arg("--out")
            .arg(runs.join(method))
            .output()
            .unwrap());
    }
    ok(tessera()
        .arg("eval")
        .arg(runs.join("hard"))
        .args(["--quiet", "--set", "eval.samples=1"])
        .output()
        .unwrap());
    ok(tessera()
        .arg("eval")
        .arg(runs.join("moe"))
        .args(["--quiet", "--set", "eval.samples=1", "--out"])
        .arg(runs.join("moe-one-sample"))
        .output()
        .unwrap());
    std::fs::create_dir_all(runs.join("not-a-run")).unwrap();
    std::fs::create_dir_all(runs.join("broken")).unwrap();
    std::fs::write(RunDir::new(runs.join("broken")).config(), "name = ").unwrap();
    let output = ok(tessera()
        .arg("runs")
        .arg(&runs)
        .arg("--json")
        .output()
        .unwrap());
    let rows: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let by_name = |name: &str| {
        rows.iter()
            .find(|r| r["run"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {rows:?}"))
    };
    for method in ["moe", "hard"] {
        let row = by_name(method);
        let summary: Summary = serde_json::from_slice(
            &std::fs::read(RunDir::new(runs.join(method)).summary()).unwrap(),
        )
        .unwrap();
        assert_eq!(row["method"], method);
        assert_eq!(row["scenario"], "tiny-cli");
        assert_eq!(row["steps"], 3);
        assert_eq!(row["rel_l2_mean"].as_f64(), Some(summary.rel_l2_mean));
        assert_eq!(
            row["persistence"].as_f64(),
            summary.persistence.map(|p| p.mean)
        );
        assert_eq!(row["other_settings"], method == "hard");
        assert!(row["started"].is_string() && row["error"].is_null());
    }
    assert!(by_name("broken")["error"].is_string());
    // An evaluation written elsewhere: its summary's scenario and method,
    // marked as other settings.
    let elsewhere = by_name("moe-one-sample");
    assert_eq!(elsewhere["method"], "moe");
    assert_eq!(elsewhere["other_settings"], true);
    // The table says the same in words.
    let table =
        String::from_utf8(ok(tessera().arg("runs").arg(&runs).output().unwrap()).stdout).unwrap();
    assert!(table.starts_with("run "), "{table}");
    assert!(
        table.contains("(other settings)") && table.contains("unreadable:"),
        "{table}"
    );
    // A run directory given itself is listed alone.
    let alone = ok(tessera()
        .arg("runs")
        .arg(runs.join("moe"))
        .arg("--json")
        .output()
        .unwrap());
    assert_eq!(String::from_utf8(alone.stdout).unwrap().lines().count(), 1);

    // Trained on after its evaluation: the row has the steps trained and
    // the step its error was evaluated at.
    let hard = RunDir::new(runs.join("hard"));
    let config = std::fs::read_to_string(hard.config()).unwrap();
    assert!(config.contains("\nsteps = 3\n"), "{config}");
    std::fs::write(
        hard.config(),
        config.replace("\nsteps = 3\n", "\nsteps = 5\n"),
    )
    .unwrap();
    ok(tessera()
        .args(["train", "--quiet", "--resume"])
        .arg(hard.root())
        .output()
        .unwrap());
    let listed = |json: bool| {
        let mut command = tessera();
        command.arg("runs").arg(hard.root());
        if json {
            command.arg("--json");
        }
        String::from_utf8(ok(command.output().unwrap()).stdout).unwrap()
    };
    let row: serde_json::Value = serde_json::from_str(listed(true).trim()).unwrap();
    assert_eq!(
        (&row["steps"], &row["evaluated_at_step"]),
        (&5.into(), &3.into())
    );
    assert!(listed(false).contains("(other settings, at step 3)"));
    // The moe run's summary is of its last step: nothing to mark.
    assert!(by_name("moe")["evaluated_at_step"].is_null());
}
