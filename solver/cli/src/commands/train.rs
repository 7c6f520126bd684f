//! `tessera train`: train a model from a scenario (or resume a run) and write
//! the run directory without evaluating.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tessera_scenarios::Scenario;
use tessera_solver::{
    Checkpoint, Claim, Layout, Model, RunData, RunDir, Totals, TrainOptions, TrainOutcome, Trainer,
    World, broadcast_run_data, with_world,
};

use crate::progress::TrainingBar;
use crate::run_name::fresh_run_dir;

/// Arguments of `tessera train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML); optional with `--resume` (the run's config.toml is used).
    #[arg(required_unless_present = "resume")]
    scenario: Option<PathBuf>,
    /// Override a scenario setting, e.g. `--set training.steps=200` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run directory [default: runs/<name>-<method>-<UTC YYYYMMDD-HHMMSS>].
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Start afresh in a non-empty run directory, or take over a stale lock.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Trains and reports where the run went (over all ranks under a launcher).
    pub fn run(self) -> anyhow::Result<()> {
        with_world(|world| self.run_in(world))
    }

    fn run_in(self, world: &World) -> anyhow::Result<()> {
        let (scenario, run, resume) = match &self.resume {
            Some(dir) => {
                let run = RunDir::new(dir);
                let scenario = run.read_config()?;
                if let Some(path) = &self.scenario {
                    let given = load_scenario(path, &self.overrides)?;
                    if given != scenario {
                        bail!(
                            "{} (with the --set overrides) differs from {}; resume with the run's own config",
                            path.display(),
                            run.config().display()
                        );
                    }
                }
                (scenario, run, true)
            }
            None => {
                let path = self
                    .scenario
                    .as_deref()
                    .context("a scenario file is required")?;
                let scenario = load_scenario(path, &self.overrides)?;
                let run = fresh_run_dir(self.out, &scenario, world)?;
                (scenario, run, false)
            }
        };
        let claim = Claim {
            resume,
            force: self.force,
        };
        let _lock = world.is_root().then(|| run.claim(claim)).transpose()?;
        if resume && world.is_root() {
            let saved = Checkpoint::load(&run.checkpoint())?.ranks();
            if saved != world.size() {
                eprintln!(
                    "note: the checkpoint was written by {saved} rank(s), this run has {}: it \
                     continues to rounding, not bit for bit",
                    world.size()
                );
            }
        }
        let (_, _, totals) = train(&scenario, &run, resume, self.quiet, world)?;
        if !world.is_root() {
            return Ok(());
        }
        eprintln!(
            "trained {} steps in {:.1} s ({} of {} solves failed); run directory {}",
            totals.step,
            totals.seconds,
            totals.failed_solves,
            totals.solves,
            run.root().display()
        );
        Ok(())
    }
}

/// Reads a scenario file and applies `--set` overrides (each re-validated).
pub(super) fn load_scenario(path: &Path, overrides: &[String]) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::from_file(path)?;
    for assignment in overrides {
        scenario.set(assignment)?;
    }
    Ok(scenario)
}

/// Builds the model, loads the data and trains to the end, returning the
/// trained model, the data and the run's totals.
pub(super) fn train(
    scenario: &Scenario,
    run: &RunDir,
    resume: bool,
    quiet: bool,
    world: &World,
) -> anyhow::Result<(Model, RunData, Totals)> {
    // Rank 0 alone draws progress; the other ranks train silently.
    let quiet = quiet || !world.is_root();
    Layout::resolve(scenario, world.size())?;
    let data = broadcast_run_data(world.comm(), || RunData::load(scenario, quiet))
        .context("obtaining the training and test data")?;
    let mut model = Model::new(scenario)?;
    let options = TrainOptions {
        resume,
        ..TrainOptions::default()
    };
    let mut bar = TrainingBar::new(scenario.training.steps, quiet);
    let outcome = Trainer::new(&mut model, scenario, &data, run)
        .with_world(world)
        .train(options, |record, totals| bar.observe(record, totals))?;
    bar.finish();
    let totals = match outcome {
        TrainOutcome::Finished(totals) | TrainOutcome::Stopped(totals) => totals,
    };
    if totals.failed_solves > 0 && world.is_root() {
        eprintln!(
            "warning: {} of {} constraint solves did not converge during training",
            totals.failed_solves, totals.solves
        );
    }
    Ok((model, data, totals))
}
