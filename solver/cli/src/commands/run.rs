//! `tessera run`: the main job — data, training, evaluation, summary and plots
//! in one run directory.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use tessera_scenarios::{Dataset, Scenario};
use tessera_solver::{
    Claim, Model, PhysicsLosses, ReportTarget, RunDir, Samples, Summary, Totals, WindowError,
    World, human_bytes, release_free_memory, report, report_at_resolutions, with_world,
};

use super::eval::trained_model;
use super::train::{MaxTime, interrupted, load_scenario, stopped_early, train};
use crate::device::DeviceArg;
use crate::interrupt::Interrupted;
use crate::memory::{MemoryCheck, peak_resident};
use crate::plots::plot_run;
use crate::progress::EvalBar;
use crate::provenance::Record;
use crate::run_name::fresh_run_dir;

/// Arguments of `tessera run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Override a scenario setting, e.g. `--set constraint.method=soft` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run directory [default: runs/<name>-<method>-<UTC YYYYMMDD-HHMMSS>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as one JSON line last on stdout.
    #[arg(long)]
    json: bool,
    /// Start afresh in a non-empty run directory, or take over a stale lock.
    #[arg(long)]
    force: bool,
    // Bounds the training: a run stopped on the limit skips the evaluation
    // (and says how to resume and evaluate).
    #[command(flatten)]
    max_time: MaxTime,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    memory: MemoryCheck,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Trains, evaluates and prints the summary (over all ranks under a
    /// launcher; rank 0 evaluates and writes).
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        interrupted(with_world(|world| self.run_in(world, started))?)
    }

    /// Trains and evaluates; a run stopped by a signal returns it, as
    /// `tessera train` does.
    fn run_in(self, world: &World, started: Instant) -> anyhow::Result<Option<Interrupted>> {
        let mut scenario = load_scenario(&self.scenario, &self.overrides)?;
        self.device.apply(&mut scenario);
        // Before the run directory exists: a refused run leaves nothing.
        let estimate = self.memory.run(&scenario, world)?;
        let run = fresh_run_dir(self.out, &scenario, world)?;
        let claim = Claim {
            resume: false,
            force: self.force,
        };
        let _lock = world.is_root().then(|| run.claim(claim)).transpose()?;
        if world.is_root() {
            Record::now(world.size(), scenario.device.to_string()).append_to(&run)?;
        }
        let deadline = self.max_time.deadline(started);
        let (mut model, mut data, outcome) =
            train(&scenario, &run, false, deadline, self.quiet, world)?;
        // Evaluating a half-trained model would spend time the limit (or the
        // signal's sender) does not give, and its summary would pass for the
        // run's result.
        let stopped = stopped_early(world, &run, &scenario, outcome, started, Some("eval"));
        if let Some(signal) = stopped {
            return Ok(signal);
        }
        if !world.is_root() {
            return Ok(None);
        }
        let totals = outcome.totals();
        // The training's buffers, its split and the free heap go back
        // before the evaluation.
        model.release_kept_buffers();
        data.release_training_split();
        release_free_memory();
        if scenario.training.horizon.is_some() {
            // Trained on the window t ≤ horizon: evaluate on the whole grid
            // with the final checkpoint's variables.
            model = trained_model(&scenario, &run)?.0;
        }
        let stored = data.stored_test(&scenario, self.quiet)?;
        let test = (&data.test, stored.as_deref());
        let output = Output {
            run: &run,
            target: ReportTarget::from(&run),
            estimate: estimate.map(|e| e.training.total().max(e.evaluation.total())),
        };
        finish(
            &mut model, &scenario, test, output, totals, self.json, self.quiet,
        )?;
        Ok(None)
    }
}

/// The trained run, and where its evaluation's summary and plots go (the
/// run, or `tessera eval --out`'s directory) with what `tessera eval`
/// changed from the run's own evaluation.
pub(super) struct Output<'a> {
    pub run: &'a RunDir,
    pub target: ReportTarget<'a>,
    /// The estimated peak memory of the command, bytes (none on a GPU).
    pub estimate: Option<u64>,
}

/// The end of `run` and `eval`: evaluates on `test` (the test split on the
/// model's grid, and as stored when the scenario has `eval.resolutions`: then
/// at each of them as well) under a progress bar (none when `quiet`), writes
/// `summary.json` and the plots, and prints the summary.
pub(super) fn finish(
    model: &mut Model,
    scenario: &Scenario,
    (test, stored): (&Samples, Option<&Dataset>),
    output: Output<'_>,
    totals: Totals,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut bar = EvalBar::new(quiet);
    let observe = &mut |progress: &_| bar.observe(progress);
    let to = output.target.dir;
    let report = match stored {
        Some(stored) => report_at_resolutions(
            model,
            scenario,
            test,
            stored,
            output.target,
            totals,
            observe,
        )?,
        None => report(model, scenario, test, output.target, totals, observe)?,
    };
    bar.finish();
    plot_run(&report, scenario, test, to)?;
    print_summary(&report.summary, (output.run, to), output.estimate, json);
    Ok(())
}

/// The summary table on stdout, and with `json` the JSON line after it;
/// `run` is the trained run, `to` where the summary was written, `estimate`
/// the command's estimated peak memory.
fn print_summary(
    summary: &Summary,
    (run, to): (&RunDir, &RunDir),
    estimate: Option<u64>,
    json: bool,
) {
    // This process's, so a `run`'s covers its training and evaluation.
    let peak = peak_resident().ok();
    let mut rows = vec![
        ("scenario", summary.scenario.clone()),
        ("method", summary.method.clone()),
        ("grid", format!("{:?}", summary.grid)),
        (
            "test rel L2",
            format!(
                "{:.4} ± {:.4} ({} samples)",
                summary.rel_l2_mean,
                summary.rel_l2_std,
                summary.rel_l2.len()
            ),
        ),
    ];
    if let Some(p) = &summary.persistence {
        rows.push((
            "persistence",
            format!("{:.4} ± {:.4} (u = u0 held)", p.mean, p.std),
        ));
    }
    if let Some(w) = &summary.windows {
        let window = |e: &WindowError| format!("{:.4} ± {:.4}", e.mean, e.std);
        rows.push((
            "t ≤ horizon",
            format!(
                "{} ({} levels, t ≤ {})",
                window(&w.in_window),
                w.levels,
                w.horizon
            ),
        ));
        rows.push(("t > horizon", window(&w.extrapolated)));
    }
    for r in &summary.resolutions {
        rows.push((
            "at resolution",
            format!(
                "{}²: {:.4} ± {:.4} ({} failed solves)",
                r.resolution, r.mean, r.std, r.failed_solves
            ),
        ));
    }
    if let Some(p) = &summary.physics {
        let losses = |l: &PhysicsLosses| format!("pde {:.4}, bc {:.4}", l.pde, l.bc);
        rows.push((
            "physics",
            format!("{} (truth: {})", losses(&p.prediction), losses(&p.truth)),
        ));
    }
    rows.extend([
        ("steps", summary.steps.to_string()),
        ("training s", format!("{:.1}", summary.seconds)),
        (
            "peak memory",
            format!(
                "{}{}",
                peak.map_or_else(|| "unknown".into(), human_bytes),
                estimate
                    .map(|e| format!(" (estimated {})", human_bytes(e)))
                    .unwrap_or_default()
            ),
        ),
        (
            "failed solves",
            format!(
                "{} of {} (training), {} (evaluation)",
                summary.failed_solves, summary.solves, summary.eval_failed_solves
            ),
        ),
        ("run directory", run.root().display().to_string()),
    ]);
    if to.root() != run.root() {
        rows.push(("written to", to.root().display().to_string()));
    }
    if let Some(with) = &summary.evaluated_with {
        let given = (with.data.iter().map(|d| format!("--data {d}")))
            .chain(with.overrides.iter().map(|o| format!("--set {o}")));
        rows.push(("evaluated with", given.collect::<Vec<_>>().join(" ")));
    }
    for (name, value) in rows {
        println!("{name:>14}  {value}");
    }
    if json {
        println!("{}", summary_line(summary, peak, estimate));
    }
}

/// The one-line JSON a `--json` run prints last: the summary without the
/// per-sample errors (with the persistence baseline's, the window errors of an extrapolation run, the
/// physics losses of the predictions and of the truth, and the errors at each of
/// `eval.resolutions`), `peak_memory_mib`: this process's peak resident set,
/// and `estimated_memory_mib`: the peak the memory check estimated.
fn summary_line(summary: &Summary, peak: Option<u64>, estimate: Option<u64>) -> String {
    let mut line = json!({
        "scenario": summary.scenario,
        "method": summary.method,
        "rel_l2_mean": summary.rel_l2_mean,
        "rel_l2_std": summary.rel_l2_std,
        "steps": summary.steps,
        "seconds": summary.seconds,
        "failed_solves": summary.failed_solves,
        "solves": summary.solves,
        "eval_failed_solves": summary.eval_failed_solves,
        "eval_seconds": summary.eval_seconds,
        "peak_memory_mib": peak.map(mib),
        "estimated_memory_mib": estimate.map(mib),
        "samples": summary.rel_l2.len(),
    });
    if let (Some(w), Some(line)) = (&summary.windows, line.as_object_mut()) {
        line.extend([
            ("horizon".to_owned(), json!(w.horizon)),
            ("in_window_rel_l2_mean".to_owned(), json!(w.in_window.mean)),
            ("in_window_rel_l2_std".to_owned(), json!(w.in_window.std)),
            (
                "extrapolated_rel_l2_mean".to_owned(),
                json!(w.extrapolated.mean),
            ),
            (
                "extrapolated_rel_l2_std".to_owned(),
                json!(w.extrapolated.std),
            ),
        ]);
    }
    if let (Some(p), Some(line)) = (&summary.persistence, line.as_object_mut()) {
        line.extend([
            ("persistence_rel_l2_mean".to_owned(), json!(p.mean)),
            ("persistence_rel_l2_std".to_owned(), json!(p.std)),
        ]);
    }
    if let (Some(with), Some(line)) = (&summary.evaluated_with, line.as_object_mut()) {
        line.insert("evaluated_with".to_owned(), json!(with));
    }
    if let (Some(p), Some(line)) = (&summary.physics, line.as_object_mut()) {
        line.extend([
            ("pde_loss".to_owned(), json!(p.prediction.pde)),
            ("pde_loss_truth".to_owned(), json!(p.truth.pde)),
            ("bc_loss".to_owned(), json!(p.prediction.bc)),
            ("bc_loss_truth".to_owned(), json!(p.truth.bc)),
        ]);
    }
    if let (false, Some(line)) = (summary.resolutions.is_empty(), line.as_object_mut()) {
        let rows: Vec<_> = summary
            .resolutions
            .iter()
            .map(|r| {
                json!({
                    "resolution": r.resolution,
                    "rel_l2_mean": r.mean,
                    "rel_l2_std": r.std,
                    "failed_solves": r.failed_solves,
                })
            })
            .collect();
        line.insert("resolutions".to_owned(), json!(rows));
    }
    line.to_string()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}
