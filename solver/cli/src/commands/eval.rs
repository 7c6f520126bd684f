//! `tessera eval`: evaluate a trained run directory on its test set (or a given
//! data file), rewriting its summary and plots, or writing them into another
//! directory (`--out`). A summary of an evaluation with other data or other
//! settings says so (`evaluated_with`), so that it cannot pass for the run's
//! own result.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tessera_scenarios::Scenario;
use tessera_solver::{
    Checkpoint, EvaluatedWith, Model, ReportTarget, RunData, RunDir, Samples, Totals,
    release_free_memory,
};

use super::run::{Output, finish};
use crate::device::DeviceArg;
use crate::memory::MemoryCheck;
use crate::provenance::Record;

/// Arguments of `tessera eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (from `tessera run` or `tessera train`).
    run_dir: PathBuf,
    /// Test trajectories (`.safetensors`/`.h5`) [default: the scenario's test data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Override a setting of the run's scenario for this evaluation, e.g.
    /// `--set eval.samples=10` or `--set eval.resolutions=[64]` (repeatable);
    /// the model's settings (`model.*`) cannot change: they are the trained
    /// model's.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Write the summary and plots into this directory (created if needed)
    /// instead of the run directory, whose own evaluation then stays as it
    /// is: for tests on other data or other settings.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the summary as one JSON line last on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    memory: MemoryCheck,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Loads the checkpoint, evaluates and prints the summary.
    pub fn run(self) -> anyhow::Result<()> {
        let run = RunDir::new(&self.run_dir);
        let trained = run.read_config()?;
        let mut scenario = trained.clone();
        scenario.set_all(&self.overrides)?;
        if scenario.model != trained.model {
            let given: Vec<&str> = (self.overrides.iter())
                .filter(|o| o.trim_start().starts_with("model"))
                .map(String::as_str)
                .collect();
            bail!(
                "--set {}: the model's settings are those it was trained with ([model] of {}); \
                 with others the checkpoint's variables would compute another function",
                given.join(", --set "),
                run.config().display()
            );
        }
        self.device.apply(&mut scenario);
        let to = self.out.as_ref().map_or_else(|| run.clone(), RunDir::new);
        if !same_directory(to.root(), run.root()) && to.checkpoint().exists() {
            bail!(
                "--out {}: that directory holds a run (its checkpoint); give a directory \
                 of its own to this evaluation, so that run's summary stays",
                to.root().display()
            );
        }
        let _lock = to.claim_to_evaluate().with_context(|| {
            format!(
                "{} is in use; to evaluate the latest checkpoint of a run in training, \
                 write the evaluation elsewhere with --out DIR",
                to.root().display()
            )
        })?;
        let estimate = self.memory.evaluation(&scenario)?;
        let (mut model, totals) = trained_model(&scenario, &run)?;
        // The checkpoint's values, read and dropped, go back to the kernel
        // (the heap keeps freed blocks below 1 GiB): at the Navier–Stokes
        // paper scale 1 GB the evaluation could not use.
        release_free_memory();
        let (test, stored) = match &self.data {
            Some(file) => Samples::load_test_file(&scenario, file),
            None => RunData::load_test(&scenario, self.quiet),
        }
        .context("obtaining the test data")?;
        Record::now(1, scenario.device.to_string()).append_to(&to)?;
        let data = self.data.as_ref().map(|d| d.display().to_string());
        let output = Output {
            run: &run,
            target: ReportTarget {
                dir: &to,
                evaluated_with: EvaluatedWith::of(data, self.overrides),
            },
            estimate: estimate.map(|e| e.total()),
        };
        let test = (&test, stored.as_ref());
        finish(
            &mut model, &scenario, test, output, totals, self.json, self.quiet,
        )
    }
}

/// Whether `a` and `b` name one directory (`runs/x` and `runs/y/../x`
/// alike); textually when either cannot be resolved.
fn same_directory(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The model of `scenario`'s whole grid with the variables (and warm starts) of
/// the run's checkpoint, and the checkpoint's totals. Only the checkpoint's
/// model part is read, and it is dropped once set: with the optimiser's
/// state the file is 3.2 GB at the Navier–Stokes paper scale, which an
/// evaluation has no use for.
///
/// A model trained on the window `t ≤ training.horizon` ran its backbone on
/// the whole grid already and its constraint variables do not depend on the
/// grid, so it loads into the whole grid's: the same backbone, and experts
/// that tile the whole domain.
pub(super) fn trained_model(scenario: &Scenario, run: &RunDir) -> anyhow::Result<(Model, Totals)> {
    let mut model = Model::for_checkpoint(scenario)?;
    let path = run.checkpoint();
    let checkpoint = Checkpoint::load_model(&path).map_err(|error| {
        let error = anyhow::Error::new(error);
        // Named only where its header reads (a resume checks the rest).
        let previous = run.previous_checkpoint();
        if Checkpoint::ranks_at(&previous).is_err() {
            return error;
        }
        error.context(format!(
            "the run's latest checkpoint cannot be read; `tessera train --resume {}` \
             trains again from the one before it, {}",
            run.root().display(),
            previous.display()
        ))
    })?;
    checkpoint.restore_model(&mut model, &path)?;
    Ok((model, checkpoint.totals))
}
