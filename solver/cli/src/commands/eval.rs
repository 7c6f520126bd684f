//! `tessera eval`: evaluate a trained run directory on its test set (or a given
//! data file), rewriting its summary and plots.

use std::path::PathBuf;

use anyhow::Context;
use tessera_scenarios::Scenario;
use tessera_solver::{Checkpoint, Model, RunData, RunDir, Samples, Totals};

use super::run::finish;
use crate::device::DeviceArg;

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
    /// the model's settings must keep their trained values (the checkpoint's
    /// variables are checked against them).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the summary as one JSON line last on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArg,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Loads the checkpoint, evaluates and prints the summary.
    pub fn run(self) -> anyhow::Result<()> {
        let run = RunDir::new(&self.run_dir);
        let mut scenario = run.read_config()?;
        scenario.set_all(&self.overrides)?;
        self.device.apply(&mut scenario);
        let (mut model, totals) = trained_model(&scenario, &run)?;
        let (test, stored) = match &self.data {
            Some(file) => Samples::load_test_file(&scenario, file),
            None => RunData::load_test(&scenario, self.quiet),
        }
        .context("obtaining the test data")?;
        finish(
            &mut model,
            &scenario,
            (&test, stored.as_ref()),
            &run,
            totals,
            self.json,
            self.quiet,
        )
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
    let checkpoint = Checkpoint::load_model(&path)?;
    checkpoint.restore_model(&mut model, &path)?;
    Ok((model, checkpoint.totals))
}
