//! `tessera train`: train a model from a scenario (or resume a run) and write
//! the run directory without evaluating.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tessera_scenarios::Scenario;
use tessera_solver::{
    Claim, Layout, Model, RunData, RunDir, TrainOptions, TrainOutcome, Trainer, World,
    broadcast_run_data, human_bytes, with_world,
};

use crate::device::DeviceArg;
use crate::duration::parse_duration;
use crate::interrupt::{self, Interrupted, StopOnSignal};
use crate::memory::{MemoryCheck, peak_resident};
use crate::progress::TrainingBar;
use crate::provenance::Record;
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

/// `--max-time`, shared by `train` and `run`.
#[derive(Debug, clap::Args)]
pub(super) struct MaxTime {
    /// Stop before this much wall-clock time (e.g. 2h, 90m, 45s, 1h30m) has
    /// passed, at a checkpoint of the last step done; `--resume` continues.
    #[arg(long = "max-time", value_name = "DURATION", value_parser = parse_duration)]
    limit: Option<Duration>,
}

impl MaxTime {
    /// The instant the budget runs out, counted from `started`; a budget past
    /// what the clock can represent is no limit.
    pub(super) fn deadline(&self, started: Instant) -> Option<Instant> {
        self.limit.and_then(|limit| started.checked_add(limit))
    }
}

impl Args {
    /// Trains and reports where the run went (over all ranks under a launcher).
    pub fn run(self) -> anyhow::Result<()> {
        // The budget counts from the start: data generation spends it too.
        let started = Instant::now();
        interrupted(with_world(|world| self.run_in(world, started))?)
    }

    /// Trains; a run stopped by a signal returns it (every rank, so that
    /// each leaves the world before it exits with the signal's status).
    fn run_in(self, world: &World, started: Instant) -> anyhow::Result<Option<Interrupted>> {
        let (mut scenario, resumed) = match &self.resume {
            Some(dir) => {
                let run = RunDir::new(dir);
                let mut scenario = run.read_config()?;
                // A run saved before its paths were anchored: as ever, from here.
                anchor_data_paths(&mut scenario)?;
                // A resume continues the run's own experiment: a scenario
                // file or overrides given with it must not change it.
                let given = match &self.scenario {
                    Some(path) => Some((
                        load_scenario(path, &self.overrides)?,
                        format!("{} (with the --set overrides)", path.display()),
                    )),
                    None if !self.overrides.is_empty() => {
                        let mut given = scenario.clone();
                        given.set_all(&self.overrides)?;
                        anchor_data_paths(&mut given)?;
                        Some((given, "the run's config with the --set overrides".into()))
                    }
                    None => None,
                };
                if let Some((mut given, what)) = given {
                    // A run's config records the experiment, not the machine.
                    given.device = scenario.device;
                    if given != scenario {
                        bail!(
                            "{what} differs from {}; a resume continues under the run's own \
                             config (start a new run to change it)",
                            run.config().display()
                        );
                    }
                }
                (scenario, Some(run))
            }
            None => {
                let path = self
                    .scenario
                    .as_deref()
                    .context("a scenario file is required")?;
                (load_scenario(path, &self.overrides)?, None)
            }
        };
        self.device.apply(&mut scenario);
        // Before a new run directory exists: a refused run leaves nothing.
        let footprint = self.memory.training(&scenario, world)?;
        let resume = resumed.is_some();
        let run = match resumed {
            Some(run) => run,
            None => fresh_run_dir(self.out, &scenario, world)?,
        };
        let claim = Claim {
            resume,
            force: self.force,
        };
        let _lock = world.is_root().then(|| run.claim(claim)).transpose()?;
        if world.is_root() {
            Record::now(world.size(), scenario.device.to_string()).append_to(&run)?;
        }
        let deadline = self.max_time.deadline(started);
        let (_, _, outcome) = train(&scenario, &run, resume, deadline, self.quiet, world)?;
        if let Some(signal) = stopped_early(world, &run, &scenario, outcome, started, None) {
            return Ok(signal);
        }
        if !world.is_root() {
            return Ok(None);
        }
        let totals = outcome.totals();
        eprintln!(
            "trained {} steps in {:.1} s ({} of {} solves failed); peak memory {}{}; \
             run directory {}",
            totals.step,
            totals.seconds,
            totals.failed_solves,
            totals.solves,
            peak_resident().map_or_else(|_| "unknown".into(), human_bytes),
            footprint
                .map(|f| format!(" (estimated {})", human_bytes(f.total())))
                .unwrap_or_default(),
            run.root().display()
        );
        Ok(None)
    }
}

/// A command's result once it has left the world: the signal that stopped
/// its run, if one did, as the error `main` turns into the exit status.
pub(super) fn interrupted(signal: Option<Interrupted>) -> anyhow::Result<()> {
    match signal {
        Some(signal) => Err(signal.into()),
        None => Ok(()),
    }
}

/// Reads a scenario file and applies `--set` overrides (in order, validated
/// together after the last: [`Scenario::set_all`]), its data paths anchored
/// ([`anchor_data_paths`]).
pub(super) fn load_scenario(path: &Path, overrides: &[String]) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::from_file(path)?;
    scenario.set_all(overrides)?;
    anchor_data_paths(&mut scenario)?;
    Ok(scenario)
}

/// Makes `data.train_file`, `data.test_file` and `data.cache_dir` absolute,
/// as the working directory resolves them now: the run's saved config then
/// names the same files when the run is resumed or evaluated from another
/// directory (a relative path would be read against that one).
fn anchor_data_paths(scenario: &mut Scenario) -> anyhow::Result<()> {
    let data = &mut scenario.data;
    for path in [
        &mut data.train_file,
        &mut data.test_file,
        &mut data.cache_dir,
    ]
    .into_iter()
    .flatten()
    {
        *path = std::path::absolute(&*path)
            .with_context(|| format!("data path {:?}", path.display().to_string()))?;
    }
    Ok(())
}

/// Builds the model, loads the data and trains to the end or to `deadline`,
/// returning the trained model, the data (the whole grid's) and how training
/// ended. The model is [`Model::for_training`]'s (resuming,
/// [`Model::for_resume`]'s, whose variables the checkpoint sets): with a
/// `training.horizon` its solution covers the trained window only.
pub(super) fn train(
    scenario: &Scenario,
    run: &RunDir,
    resume: bool,
    deadline: Option<Instant>,
    quiet: bool,
    world: &World,
) -> anyhow::Result<(Model, RunData, TrainOutcome)> {
    // Rank 0 alone draws progress; the other ranks train silently.
    let quiet = quiet || !world.is_root();
    Layout::resolve(scenario, world.size())?;
    world.use_device(scenario.device)?;
    // The model first: a device that cannot be used fails before the data
    // are generated. With `training.horizon` the model trains on the levels
    // t ≤ horizon only; `run` and `eval` evaluate on the whole grid (see
    // `trained_model`).
    let mut model = if resume {
        Model::for_resume(scenario)?
    } else {
        Model::for_training(scenario)?
    };
    let data = broadcast_run_data(world.comm(), || RunData::load(scenario, quiet))
        .context("obtaining the training and test data")?;
    let window = data.training_window(scenario)?;
    let signals = StopOnSignal::install().context("installing the signal handlers")?;
    let options = TrainOptions {
        resume,
        deadline,
        stop: Some(signals.flag()),
        ..TrainOptions::default()
    };
    let mut bar = TrainingBar::new(scenario.training.steps, quiet);
    let outcome = Trainer::new(&mut model, scenario, &window, run)
        .with_world(world)
        .train(options, |record, totals| bar.observe(record, totals))?;
    drop(signals);
    bar.finish();
    let totals = outcome.totals();
    if totals.failed_solves > 0 && world.is_root() {
        eprintln!(
            "warning: {} of {} constraint solves did not converge during training",
            totals.failed_solves, totals.solves
        );
    }
    Ok((model, data, outcome))
}

/// Whether training stopped before its last step (`Some`, with the signal
/// that stopped it, if one did): then rank 0 says why and where, and the
/// command that continues the run (then `then`, e.g. the evaluation `run`
/// skipped).
pub(super) fn stopped_early(
    world: &World,
    run: &RunDir,
    scenario: &Scenario,
    outcome: TrainOutcome,
    started: Instant,
    then: Option<&str>,
) -> Option<Option<Interrupted>> {
    let (why, signal) = match outcome {
        TrainOutcome::TimeUp(_) => (
            format!(
                "on the time limit (--max-time), {:.1} s after the start,",
                started.elapsed().as_secs_f64()
            ),
            None,
        ),
        TrainOutcome::Interrupted(_) => {
            let signal = interrupt::received();
            let name = signal.map_or_else(|| "a stop request".into(), |s| s.name());
            (format!("by {name}"), signal)
        }
        TrainOutcome::Finished(_) | TrainOutcome::Stopped(_) => return None,
    };
    if world.is_root() {
        // The program as the user invoked it, e.g. `target/release/tessera`.
        let program = std::env::args().next().unwrap_or_else(|| "tessera".into());
        let dir = run.root().display();
        eprintln!(
            "stopped {why} at step {} of {}; checkpoint saved in {dir}\n\
             continue with: {program} train --resume {dir}",
            outcome.totals().step,
            scenario.training.steps,
        );
        if let Some(then) = then {
            eprintln!("then: {program} {then} {dir}");
        }
    }
    Some(signal)
}
