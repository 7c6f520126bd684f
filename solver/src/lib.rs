//! Tessera's solver library: the FNO backbone, the hard-constrained model
//! (PI-HC-MoE: basis → mixture of constraint experts → `u`), its losses,
//! training, evaluation and checkpoints — what a program embeds. The `tessera`
//! command-line tool is a separate crate on top of this one.
//!
//! Everything is driven by a [`Scenario`](tessera_scenarios::Scenario) (one TOML
//! file: PDE, grid, data, model, constraint, training) and a [`RunDir`] (where a
//! run keeps its config, checkpoint, metrics and summary).
//!
//! **Use a trained run.** [`TrainedModel::load`] reads everything from the run
//! directory (config and checkpoint); [`TrainedModel::predict`] returns the
//! constrained fields of a batch of initial conditions plus each expert's solver
//! status, on a thread count the caller chooses (`&self`: callable from several
//! threads at once):
//!
//! ```no_run
//! use tessera_solver::TrainedModel;
//!
//! # fn main() -> Result<(), tessera_solver::SolverError> {
//! let model = TrainedModel::load("runs/quickstart-moe-20261201-061530")?;
//! let ic = vec![0.5; model.ic_len()];
//! let predictions = model.predict(&ic, 2)?; // fields [batch, T, X], row-major
//! println!("{} values, {} solves", predictions.field(0).len(), predictions.statuses_of(0).len());
//! # Ok(()) }
//! ```
//!
//! The constraint layer alone works on caller-owned arrays without candle:
//! [`ConstraintProjection`] (see `solver/examples/projection.rs`).
//!
//! **Train from a scenario.**
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use tessera_scenarios::Scenario;
//! use tessera_solver::{EvalProgress, Model, RunData, RunDir, TrainOptions, Trainer, report};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scenario = Scenario::from_file("scenarios/quickstart.toml")?;
//! let data = RunData::load(&scenario, true)?;
//! let mut model = Model::new(&scenario)?;
//! let run = RunDir::new("runs/my-run");
//! Trainer::new(&mut model, &scenario, &data, &run)
//!     .train(TrainOptions::default(), |_record, _totals| ControlFlow::Continue(()))?;
//! // The evaluation says where it stands after each chunk of test samples.
//! let mut observe = |p: &EvalProgress| eprintln!("{}/{} samples", p.done, p.total);
//! let summary = report(&mut model, &scenario, &data.test, &run, Default::default(), &mut observe)?;
//! println!("test rel L2 {:.4}", summary.summary.rel_l2_mean);
//! # Ok(()) }
//! ```
//!
//! Parallelism: the constraint solves run in the caller's rayon pool
//! (`pool.install(|| …)`), so an embedding program decides how many threads
//! Tessera uses.

mod backbone;
mod data;
pub mod embed;
mod error;
mod eval;
mod footprint;
mod memory;
mod model;
mod parallel;
mod phases;
mod train;
mod trainable;

#[cfg(feature = "cuda")]
pub use backbone::device;
pub use backbone::host_slot::{ArmedHostSlot, HostGradientSlot};
pub use backbone::{Fno, FnoConfig, SeededVars};
pub use data::{RunData, Samples};
pub use embed::{ConstraintProjection, Predictions, TrainedModel, WorkerPool};
pub use error::SolverError;
pub use eval::{
    EvalObserver, EvalProgress, EvaluatedWith, Evaluation, FloorOptions, LbfgsStop, PhysicsCheck,
    PhysicsFloor, PhysicsLosses, Report, ReportTarget, ResolutionErrors, Summary, WindowError,
    WindowErrors, evaluate, evaluate_observed, evaluate_resolutions, method_name, physics_check,
    physics_floor, relative_l2, report, report_at_resolutions, window_errors,
};
pub use footprint::{EvalFootprint, Footprint, PROGRAM_BYTES, human_bytes};
pub use memory::release_free_memory;
pub use model::gradcheck::{GradcheckOptions, GradcheckReport, MethodCheck, gradcheck, sample_ics};
pub use model::{Inference, KeptInference, Model};
#[cfg(feature = "cuda")]
pub use parallel::gpu_ordinal;
pub use parallel::launcher::local_rank;
pub use parallel::{
    DataShard, Launcher, Layout, ParallelError, World, broadcast_run_data, with_world,
};
pub use phases::{Phase, PhaseClock, PhaseTimes};
pub use train::{
    Adam, AdamConfig, Checkpoint, Claim, LockHolder, ResumePoint, RunDir, RunLock, StepRecord,
    StopReason, Totals, TrainOptions, TrainOutcome, Trainer, Validation, eval_seed, host_name,
    named_vars, step_draw, update, update_shard,
};
pub use trainable::{Batch, Prediction, SampleGradients, StepLoss, Trainable};

// The test fixtures shared with `tests/` name the crate as an outside user does.
#[cfg(test)]
extern crate self as tessera_solver;
#[cfg(test)]
mod tests;
