//! The training loop, separated from the optimiser and the model (argmin's
//! executor shape): each step draws its batch, asks the model for the loss,
//! back-propagates, clips, updates with Adam, logs a metrics line, validates
//! and checkpoints on schedule; with a deadline it stops early at a checkpoint
//! of its own rather than be killed mid-step.
//!
//! In a multi-rank [`World`] every rank runs this loop on the same global
//! batches, computing its [`DataShard`] of each; rank 0 alone owns the run
//! directory (config, metrics, checkpoints) and validates, the other ranks
//! write nothing. Every [`HASH_EVERY`] steps and at every checkpoint the ranks
//! compare a hash of their variables and stop if they ever differ.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Var;
use tessera_scenarios::Scenario;

use super::adam::{Adam, AdamConfig};
use super::batches::{eval_seed, step_draw};
use super::checkpoint::{Checkpoint, ResumePoint, Totals};
use super::deadline::Deadline;
use super::metrics::{MetricsLog, StepRecord, StopReason, Validation};
use super::run_dir::RunDir;
use super::schedule::learning_rate;
use super::update::{named_vars, update_shard};
use crate::SolverError;
use crate::data::RunData;
use crate::eval::evaluate;
use crate::parallel::{DataShard, Layout, ParallelError, World};
use crate::trainable::{Batch, Trainable};

/// Steps between the ranks' parameter-hash comparisons (and at checkpoints).
pub const HASH_EVERY: usize = 16;

/// How to train.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the run directory's checkpoint instead of starting afresh.
    pub resume: bool,
    /// Adam's constants.
    pub adam: AdamConfig,
    /// Stop before this instant, at a checkpoint of the last step done (see
    /// [`TrainOutcome::TimeUp`]); `None` trains to the end.
    pub deadline: Option<Instant>,
    /// Once set (by a signal handler, say: the CLI's for SIGTERM, SIGINT and
    /// SIGUSR1), the run stops after the step in progress, at a checkpoint of
    /// it (see [`TrainOutcome::Interrupted`]). Under MPI every rank's flag
    /// votes, and all stop at the same step.
    pub stop: Option<Arc<AtomicBool>>,
}

/// How training ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrainOutcome {
    /// All `training.steps` updates are done and checkpointed.
    Finished(Totals),
    /// The observer asked to stop after this many updates; nothing was saved
    /// beyond the periodic checkpoints, as if the process had been killed.
    Stopped(Totals),
    /// One more step and a save would have passed [`TrainOptions::deadline`]:
    /// the run stopped after this many updates with a checkpoint of them, and
    /// its last metrics line says [`StopReason::TimeLimit`].
    TimeUp(Totals),
    /// [`TrainOptions::stop`] was set: the run stopped after this many
    /// updates with a checkpoint of them, and its last metrics line says
    /// [`StopReason::Interrupted`].
    Interrupted(Totals),
}

impl TrainOutcome {
    /// The run's totals when training ended.
    pub fn totals(&self) -> Totals {
        match *self {
            Self::Finished(totals)
            | Self::Stopped(totals)
            | Self::TimeUp(totals)
            | Self::Interrupted(totals) => totals,
        }
    }
}

/// Trains one model on one scenario's data, writing into a run directory.
pub struct Trainer<'a, M: Trainable + ?Sized> {
    model: &'a mut M,
    scenario: &'a Scenario,
    data: &'a RunData,
    run: &'a RunDir,
    world: Option<&'a World>,
}

impl<'a, M: Trainable + ?Sized> Trainer<'a, M> {
    /// A trainer; nothing is read or written yet.
    pub fn new(
        model: &'a mut M,
        scenario: &'a Scenario,
        data: &'a RunData,
        run: &'a RunDir,
    ) -> Self {
        Self {
            model,
            scenario,
            data,
            run,
            world: None,
        }
    }

    /// Trains as one rank of `world` (default: a world of one).
    pub fn with_world(mut self, world: &'a World) -> Self {
        self.world = Some(world);
        self
    }

    /// Trains to `training.steps` (or to the deadline). `observer` sees each
    /// step's record and the run's totals so far after the step is logged (and
    /// checkpointed, on checkpoint steps), e.g. to draw a progress bar, and may
    /// stop the run.
    pub fn train(
        &mut self,
        options: TrainOptions,
        mut observer: impl FnMut(&StepRecord, &Totals) -> ControlFlow<()>,
    ) -> Result<TrainOutcome, SolverError> {
        let t = &self.scenario.training;
        if self.data.train.len() < t.batch_size {
            return Err(SolverError::ShapeMismatch {
                what: "training samples (at least one batch)",
                expected: vec![t.batch_size],
                got: vec![self.data.train.len()],
            });
        }
        let (shard, root) = match self.world {
            Some(world) if world.size() > 1 => {
                let layout = Layout::resolve(self.scenario, world.size())?;
                (DataShard::new(world.comm(), layout), world.is_root())
            }
            _ => (DataShard::whole(), true),
        };
        let ranks = self.world.map_or(1, World::size);
        if root {
            self.run.create()?;
        }
        let (mut adam, mut totals, mut metrics) = if options.resume {
            let (checkpoint, path) = self.resume_point(root, ranks)?;
            checkpoint.restore_model(self.model, &path)?;
            let metrics = root
                .then(|| MetricsLog::open(&self.run.metrics(), Some(checkpoint.totals.step)))
                .transpose()?;
            (checkpoint.adam(options.adam)?, checkpoint.totals, metrics)
        } else {
            let metrics = if root {
                self.run.write_config(self.scenario)?;
                Some(MetricsLog::open(&self.run.metrics(), None)?)
            } else {
                None
            };
            (Adam::new(options.adam), Totals::default(), metrics)
        };
        let vars = named_vars(self.model)?;
        let started = Instant::now();
        let seconds_before = totals.seconds;
        let mut deadline = options.deadline.map(Deadline::new);
        while totals.step < t.steps {
            let step_started = Instant::now();
            let mut record = self.step(totals.step, &vars, &mut adam, &shard)?;
            totals.step += 1;
            totals.failed_solves += record.failed_solves;
            totals.solves += record.solves;
            totals.seconds = seconds_before + started.elapsed().as_secs_f64();
            record.seconds = totals.seconds;
            let last = totals.step == t.steps;
            if root && (totals.step % t.validate_every == 0 || last) {
                record.validation = Some(self.validate()?);
            }
            let stop = if last {
                None
            } else {
                if let Some(deadline) = &mut deadline {
                    deadline.step_took(step_started.elapsed());
                }
                stop_vote(deadline.as_ref(), options.stop.as_deref(), root, &shard)?
            };
            record.stopped = stop;
            let checkpoint = totals.step % t.checkpoint_every == 0 || last || stop.is_some();
            if checkpoint || totals.step % HASH_EVERY == 0 {
                shard.check_identical(&vars, totals.step)?;
            }
            if let Some(metrics) = &mut metrics {
                metrics.append(&record)?;
                if checkpoint {
                    let saving = Instant::now();
                    // A checkpoint on the disk has its steps' lines there too.
                    metrics.sync()?;
                    let previous = self.run.previous_checkpoint();
                    let keep = t.keep_previous_checkpoint.then_some(previous.as_path());
                    let path = self.run.checkpoint();
                    Checkpoint::save(&path, keep, self.model, &adam, totals, ranks)?;
                    if let Some(deadline) = &mut deadline {
                        deadline.save_took(saving.elapsed());
                    }
                }
            }
            if observer(&record, &totals).is_break() {
                return Ok(TrainOutcome::Stopped(totals));
            }
            match stop {
                Some(StopReason::TimeLimit) => return Ok(TrainOutcome::TimeUp(totals)),
                Some(StopReason::Interrupted) => return Ok(TrainOutcome::Interrupted(totals)),
                None => {}
            }
        }
        Ok(TrainOutcome::Finished(totals))
    }

    /// The checkpoint a resumed run continues from, and its file: the
    /// latest, or the one before it where the latest cannot be read
    /// ([`Checkpoint::resume_point`]; rank 0 picks, and says so on stderr,
    /// then broadcasts the file it picked, which the other ranks parse: their
    /// disks need not hold the run). Rank 0 also notes a checkpoint written
    /// by another number of ranks.
    fn resume_point(&self, root: bool, ranks: usize) -> Result<(Checkpoint, PathBuf), SolverError> {
        let (latest, previous) = (self.run.checkpoint(), self.run.previous_checkpoint());
        let note = |picked: &ResumePoint| {
            if let Some(error) = &picked.passed_over {
                eprintln!(
                    "warning: {error}; resuming from the checkpoint before it, {} (step {})",
                    previous.display(),
                    picked.checkpoint.totals.step
                );
            }
            let saved = picked.checkpoint.ranks();
            if saved != ranks {
                eprintln!(
                    "note: the checkpoint was written by {saved} rank(s), this run has {ranks}: \
                     it continues to rounding, not bit for bit"
                );
            }
        };
        let picked = root
            .then(|| Checkpoint::resume_point(&latest, &previous))
            .transpose()?;
        if let Some(picked) = &picked {
            note(picked);
        }
        let mut bytes = Vec::new();
        if let Some(world) = self.world.filter(|w| w.size() > 1) {
            if let Some(picked) = &picked {
                bytes =
                    std::fs::read(&picked.path).map_err(|e| SolverError::io(&picked.path, e))?;
            }
            world
                .comm()
                .broadcast_bytes(0, &mut bytes)
                .map_err(ParallelError::from)?;
        }
        match picked {
            Some(picked) => Ok((picked.checkpoint, picked.path)),
            None => Ok((Checkpoint::from_bytes(&latest, bytes)?, latest)),
        }
    }

    /// Update number `step` (0-based) on the batch the step draws; the record's
    /// `seconds` and `validation` are filled by the caller.
    fn step(
        &mut self,
        step: usize,
        vars: &BTreeMap<String, Var>,
        adam: &mut Adam,
        shard: &DataShard<'_>,
    ) -> Result<StepRecord, SolverError> {
        let t = &self.scenario.training;
        let train = &self.data.train;
        let draw = step_draw(self.scenario.seed, step, train.len(), t.batch_size);
        let targets = if t.loss.data > 0.0 {
            let trajectories = train.trajectories()?;
            Some(
                draw.indices
                    .iter()
                    .map(|&i| trajectories[i].clone())
                    .collect(),
            )
        } else {
            None
        };
        let batch = Batch {
            ics: train.initial_conditions(&draw.indices),
            targets,
            seed: draw.seed,
        };
        let mut record = update_shard(
            self.model,
            &batch,
            vars,
            adam,
            learning_rate(t, step),
            t.clip_norm,
            shard,
        )?;
        record.step = step + 1;
        Ok(record)
    }

    /// Relative L2 error on the first `training.validate_samples` test samples.
    fn validate(&mut self) -> Result<Validation, SolverError> {
        let t = &self.scenario.training;
        let count = t.validate_samples.min(self.data.test.len());
        let seed = eval_seed(self.scenario.seed);
        let evaluation = evaluate(self.model, &self.data.test, count, t.batch_size, seed)?;
        Ok(Validation {
            rel_l2_mean: evaluation.mean,
            rel_l2_std: evaluation.std,
            failed_solves: evaluation.failed_solves,
        })
    }
}

/// Whether the run stops after this step, and why: asked to (a rank's `stop`
/// flag is set), or to save before `deadline`, which rank 0 alone judges by
/// its own clock (it alone pays for the saves). The votes are summed over
/// the ranks, so every rank stops at the same step and takes part in the
/// same collectives; one rank stopping alone would leave the others waiting.
fn stop_vote(
    deadline: Option<&Deadline>,
    stop: Option<&AtomicBool>,
    root: bool,
    shard: &DataShard<'_>,
) -> Result<Option<StopReason>, SolverError> {
    if deadline.is_none() && stop.is_none() {
        return Ok(None);
    }
    let overrun = root && deadline.is_some_and(|d| d.next_step_overruns(Instant::now()));
    let requested = stop.is_some_and(|flag| flag.load(Ordering::SeqCst));
    let mut votes = [f64::from(u8::from(overrun)), f64::from(u8::from(requested))];
    shard.sum(&mut votes)?;
    Ok(if votes[1] > 0.0 {
        Some(StopReason::Interrupted)
    } else if votes[0] > 0.0 {
        Some(StopReason::TimeLimit)
    } else {
        None
    })
}
