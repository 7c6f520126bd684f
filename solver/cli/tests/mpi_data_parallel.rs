//! Multi-rank training under `mpirun -np 2` (feature `mpi`; needs Open MPI's
//! `mpirun` on the PATH): data parallelism reproduces the single-process loss
//! curve (bit for bit with `parallel.reproducible`), expert parallelism
//! reproduces it bit for bit, two runs are bit-identical, a killed rank ends the job quickly and
//! the last checkpoint resumes under the same and a different number of ranks,
//! `--max-time` stops both ranks at the same step, and `bench train-step`
//! reports the step from rank 0 with its communication.
//!
//! Run these tests one at a time (`--test-threads=1`): each starts two ranks.
#![cfg(feature = "mpi")]

mod cli_support;
#[path = "../../tests/train_support/mod.rs"]
mod train_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli_support::{
    ok, records, stop_on_time_limit, tessera, tiny_scenario, train_until_checkpoint,
};
use tessera_solver::{Checkpoint, RunDir, StepRecord};
use train_support::{damage_a_variable, temp_dir};

const STEPS: usize = 50;

/// `mpirun -np ranks tessera …` with the options containers need, one rayon
/// thread per rank and no binding (the ranks share this machine's cores).
fn mpirun(ranks: usize) -> Command {
    mpirun_exporting(ranks, &[])
}

/// [`mpirun`], setting the `VAR=value` of `exports` in every rank.
fn mpirun_exporting(ranks: usize, exports: &[&str]) -> Command {
    let mut command = Command::new("mpirun");
    for export in exports {
        command.args(["-x", export]);
    }
    command
        .args([
            "-np",
            &ranks.to_string(),
            "--oversubscribe",
            "--bind-to",
            "none",
        ])
        .args(["--mca", "btl", "self,vader"])
        .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
        .args(["-x", "RAYON_NUM_THREADS=1"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .arg(env!("CARGO_BIN_EXE_tessera"));
    command
}

/// The tiny run of these tests, with an f64 backbone and warm-started solves.
fn scenario_file(dir: &Path) -> PathBuf {
    tiny_scenario(
        dir,
        ("tiny-mpi", 9),
        (STEPS, 25),
        "dtype = \"f64\"",
        "init = \"warm\"",
    )
}

fn assert_close(a: &[StepRecord], b: &[StepRecord], rtol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for (what, p, q) in [("loss", x.loss, y.loss), ("pde", x.pde, y.pde)] {
            assert!(
                (p - q).abs() <= rtol * p.abs().max(q.abs()),
                "step {} {what}: {p} vs {q}",
                x.step
            );
        }
        assert_eq!(x.solves, y.solves);
        assert_eq!(
            x.lm_iterations_mean, y.lm_iterations_mean,
            "step {}",
            x.step
        );
    }
}

fn train(command: &mut Command, scenario: &Path, out: &Path) -> Output {
    train_with(command, scenario, out, &[])
}

/// [`train`] with further options (e.g. `--set`).
fn train_with(command: &mut Command, scenario: &Path, out: &Path, options: &[&str]) -> Output {
    command
        .arg("train")
        .arg(scenario)
        .args(options)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Every tensor of a run's checkpoint as f64, by name.
fn checkpoint_tensors(run: &Path) -> Vec<(String, Vec<f64>)> {
    let mut all: Vec<(String, Vec<f64>)> =
        candle_core::safetensors::load(RunDir::new(run).checkpoint(), &candle_core::Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(k, t)| {
                let v = t.to_dtype(candle_core::DType::F64).unwrap();
                (k, v.flatten_all().unwrap().to_vec1().unwrap())
            })
            .collect();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    all
}

#[test]
fn two_ranks_match_one_process_and_repeat_bit_for_bit() {
    let dir = temp_dir("mpi-equivalence");
    let scenario = scenario_file(&dir);
    let (single, a, b) = (dir.join("single"), dir.join("a"), dir.join("b"));
    ok(train(&mut tessera(), &scenario, &single));
    ok(train(&mut mpirun(2), &scenario, &a));
    ok(train(&mut mpirun(2), &scenario, &b));
    let (rs, ra, rb) = (records(&single), records(&a), records(&b));
    assert_eq!(rs.len(), STEPS);
    // Measured: 1e-9 holds through the first steps; the rounding differences
    // of the summation order then grow through Adam and the solves. At step 50
    // with the face boundary rows: 8e-8 (loss) and 2.5e-7 (PDE part); with the
    // reference's cell-centre rows 2e-8 and 4e-8. LM iteration counts agree.
    assert_close(&rs, &ra, 1e-6);
    assert_eq!(ra, rb, "two runs with the same ranks differ");
    assert_eq!(
        checkpoint_tensors(&a),
        checkpoint_tensors(&b),
        "checkpoints differ"
    );
    assert!(!RunDir::new(&a).lock().exists(), "the lock is released");
    // Two expert ranks split the solves and nothing else: no sum changes order.
    let experts = dir.join("experts");
    ok(train_with(
        &mut mpirun(2),
        &scenario,
        &experts,
        &["--set", "parallel.experts=2"],
    ));
    assert_eq!(records(&experts), rs, "expert parallelism changed the run");
    assert_eq!(checkpoint_tensors(&experts), checkpoint_tensors(&single));
    // With per-sample passes and sums in sample order, data parallelism too.
    let reproducible = ["--set", "parallel.reproducible=true"];
    let (one, two) = (dir.join("reproducible-1"), dir.join("reproducible-2"));
    ok(train_with(&mut tessera(), &scenario, &one, &reproducible));
    ok(train_with(&mut mpirun(2), &scenario, &two, &reproducible));
    assert_eq!(records(&two), records(&one), "reproducible runs differ");
    assert_eq!(checkpoint_tensors(&two), checkpoint_tensors(&one));
    assert_close(&records(&one), &rs, 1e-6);
}

/// The pid of the process started (directly) by `parent` whose environment
/// says it is rank `rank`.
fn rank_pid(parent: u32, rank: usize) -> Option<u32> {
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes_on_two_or_one_ranks() {
    let dir = temp_dir("mpi-kill");
    let scenario = scenario_file(&dir);
    let (straight, killed) = (dir.join("straight"), dir.join("killed"));
    ok(train(&mut mpirun(2), &scenario, &straight));

    let mut job = train_until_checkpoint(
        &mut mpirun(2),
        &scenario,
        &killed,
        Stdio::piped(),
        Duration::from_secs(60),
    );
    let victim = rank_pid(job.id(), 1).expect("rank 1 of the job");
    // SAFETY: sending SIGKILL to a process this test started (through mpirun).
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let killed_at = Instant::now();
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the job still runs 30 s after a rank was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "the job reported success");
    let done = records(&killed).len();
    assert!(
        done < STEPS,
        "the run finished before the kill ({done} steps)"
    );

    // Resume a copy on one rank, the original on two.
    let single = dir.join("single");
    std::fs::create_dir_all(&single).unwrap();
    for entry in std::fs::read_dir(&killed).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), single.join(entry.file_name())).unwrap();
        }
    }
    ok(mpirun(2)
        .args(["train", "--quiet", "--resume"])
        .arg(&killed)
        .output()
        .unwrap());
    let saved = Checkpoint::load(&RunDir::new(&single).checkpoint()).unwrap();
    assert_eq!(saved.ranks(), 2, "the checkpoint records the job's ranks");
    let resumed = tessera()
        .args(["train", "--quiet", "--resume"])
        .arg(&single)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr).into_owned();
    ok(resumed);
    assert!(stderr.contains("written by 2 rank(s)"), "{stderr}");
    let reference = records(&straight);
    assert_eq!(records(&killed), reference, "same ranks: an exact resume");
    // Another number of ranks sums in another order: equal to rounding only.
    assert_close(&records(&single), &reference, 1e-6);

    // Rank 0 picks the checkpoint before a damaged latest, every rank reads
    // the bytes it broadcasts, and the run ends as before.
    damage_a_variable(&RunDir::new(&killed).checkpoint());
    let again = mpirun(2)
        .args(["train", "--quiet", "--resume"])
        .arg(&killed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    ok(again);
    assert!(
        stderr.contains("resuming from the checkpoint before it"),
        "{stderr}"
    );
    assert_eq!(
        records(&killed),
        reference,
        "resumed from the previous checkpoint"
    );
}

/// Rank 0 alone decides when time is up; were the other rank to stop at
/// another step, the job would hang in a collective or fail the parameter-hash
/// check at the stop's checkpoint instead of exiting cleanly.
#[test]
fn max_time_stops_every_rank_at_one_checkpoint() {
    let dir = temp_dir("mpi-max-time");
    let steps = 100_000;
    let scenario = tiny_scenario(
        &dir,
        ("tiny-mpi-long", 9),
        (steps, 1000),
        "dtype = \"f64\"",
        "init = \"warm\"",
    );
    let out = dir.join("run");
    let (stderr, stopped) = stop_on_time_limit(&mut mpirun(2), "train", &scenario, "2s", &out);
    let run = RunDir::new(&out);
    assert!(stopped < steps, "{stderr}");
    assert_eq!(run.read_metrics().unwrap().len(), stopped);
    assert!(stderr.contains("train --resume"), "{stderr}");
}

/// SIGUSR1 to mpirun (which passes it to every rank; Slurm's `--signal`
/// reaches every task) stops both ranks after the same step, at one
/// checkpoint of it, and the job exits with 128 + the signal's number.
#[test]
fn a_signal_stops_every_rank_at_one_checkpoint() {
    let dir = temp_dir("mpi-signal");
    let steps = 100_000;
    let scenario = tiny_scenario(
        &dir,
        ("tiny-mpi-signal", 9),
        (steps, 1000),
        "dtype = \"f64\"",
        "init = \"warm\"",
    );
    let out = dir.join("run");
    let job = train_until_checkpoint(
        &mut mpirun(2),
        &scenario,
        &out,
        Stdio::piped(),
        Duration::from_secs(60),
    );
    // SAFETY: sending SIGUSR1 to the launcher this test started.
    assert_eq!(unsafe { libc::kill(job.id() as i32, libc::SIGUSR1) }, 0);
    let output = job.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128 + libc::SIGUSR1), "{stderr}");
    let run = RunDir::new(&out);
    let stopped = Checkpoint::load(&run.checkpoint()).unwrap().totals.step;
    let records = run.read_metrics().unwrap();
    assert!(stopped < steps, "{stderr}");
    assert_eq!(records.len(), stopped);
    assert_eq!(
        records[stopped - 1].stopped,
        Some(tessera_solver::StopReason::Interrupted)
    );
    assert!(stderr.contains("stopped by SIGUSR1"), "{stderr}");
}

#[test]
fn a_world_that_differs_from_the_launcher_is_refused() {
    let dir = temp_dir("mpi-mismatch");
    let scenario = scenario_file(&dir);
    // Started without mpirun, MPI's world is this one process.
    let output = tessera()
        .arg("train")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(dir.join("run"))
        .env("PMI_SIZE", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("declares 2 ranks"), "{stderr}");
}

#[test]
fn bench_train_step_reports_throughput_and_traffic_from_rank_0() {
    let dir = temp_dir("mpi-bench");
    let scenario = scenario_file(&dir);
    let output = ok(mpirun(2)
        .args(["bench", "train-step", "--scenario"])
        .arg(&scenario)
        .args(["--batch", "2", "--json"])
        .output()
        .unwrap());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "one report, from rank 0: {stdout}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let number = |key: &str| {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert_eq!(number("ranks"), 2.0);
    // The gradient all-reduce alone sends half the gradient and receives
    // the other half back summed: some bytes every step, and some time.
    assert!(number("comm_bytes_per_step") > 0.0, "{report}");
    assert!(number("comm_median_s") > 0.0, "{report}");
    // Up to the last bit, which the JSON float parser may not keep.
    let expected = 2.0 / number("step_median_s");
    assert!((number("samples_per_s") - expected).abs() <= 1e-12 * expected);
}

/// The memory check divides the bound among the job's processes on the
/// machine: a bound the tiny run fits in alone refuses it on two ranks,
/// every rank says why and the job ends (no rank waits for another).
#[test]
fn two_ranks_share_the_memory_bound() {
    let dir = temp_dir("mpi-memory");
    let scenario = scenario_file(&dir);
    let alone = train_with(
        tessera().env("TESSERA_MEMORY_LIMIT", "40M"),
        &scenario,
        &dir.join("alone"),
        &["--set", "training.steps=1"],
    );
    ok(alone);
    let output = train(
        &mut mpirun_exporting(2, &["TESSERA_MEMORY_LIMIT=40M"]),
        &scenario,
        &dir.join("shared"),
    );
    assert!(!output.status.success(), "two ranks trained anyway");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("shared by 2 processes").count(),
        2,
        "{stderr}"
    );
}
