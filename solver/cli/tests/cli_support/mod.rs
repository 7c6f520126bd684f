//! What the CLI's end-to-end tests share: running the binary, and a tiny
//! diffusion–sorption PI-HC-MoE run small enough to train in seconds.
//! (Each test binary uses a part of it.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tessera_solver::{Checkpoint, RunDir, StepRecord};

/// The `tessera` binary of this build.
pub fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

/// `output` of a command that must have succeeded (else its stderr).
pub fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "tessera failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `dir/tiny.toml`: diffusion–sorption on an 8 × 16 grid, two experts,
/// a batch of 2, `steps` steps, checkpoints every 5, data cached in
/// `dir/cache`. `model` and `constraint` are extra lines for those tables.
pub fn tiny_scenario(
    dir: &Path,
    (name, seed): (&str, u64),
    (steps, validate_every): (usize, usize),
    model: &str,
    constraint: &str,
) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seed = {seed}
[pde]
kind = "diffusion-sorption"
[grid]
nt = 8
nx = 16
t_max = 500.0
[data]
train_samples = 4
test_samples = 2
cache_dir = "{}"
[data.reference]
rtol = 1e-6
[model]
widths = [4, 6, 6]
modes = [2, 3]
fc_dim = 8
n_basis = 6
{model}
[constraint]
method = "moe"
experts = [1, 2]
points = 24
{constraint}
[training]
steps = {steps}
batch_size = 2
checkpoint_every = 5
validate_every = {validate_every}
validate_samples = 1
[eval]
plots = 1
"#,
        dir.join("cache").display()
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The metrics of the run in `run`, with the wall-clock seconds zeroed (the
/// one field two identical runs do not share).
pub fn records(run: &Path) -> Vec<StepRecord> {
    RunDir::new(run)
        .read_metrics()
        .unwrap()
        .into_iter()
        .map(|r| StepRecord { seconds: 0.0, ..r })
        .collect()
}

/// Starts `command train scenario --out out` (quiet, stdout discarded) and
/// returns once its first checkpoint exists, failing after `within`.
pub fn train_until_checkpoint(
    command: &mut Command,
    scenario: &Path,
    out: &Path,
    stderr: Stdio,
    within: Duration,
) -> Child {
    let child = command
        .arg("train")
        .arg(scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let checkpoint = RunDir::new(out).checkpoint();
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(started.elapsed() < within, "no checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

/// Runs `command subcommand scenario --quiet --max-time budget --out out` to
/// success and returns its stderr and the step of the checkpoint it left.
pub fn stop_on_time_limit(
    command: &mut Command,
    subcommand: &str,
    scenario: &Path,
    budget: &str,
    out: &Path,
) -> (String, usize) {
    let output = ok(command
        .arg(subcommand)
        .arg(scenario)
        .args(["--quiet", "--max-time", budget, "--out"])
        .arg(out)
        .output()
        .unwrap());
    let stopped = Checkpoint::load(&RunDir::new(out).checkpoint())
        .unwrap()
        .totals
        .step;
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        stopped,
    )
}
