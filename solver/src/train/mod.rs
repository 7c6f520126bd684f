//! Training: the optimiser (Adam with global-norm clipping and the paper's
//! learning-rate schedules), deterministic batches, checkpoints, metrics and the
//! loop that ties them to a [`crate::trainable::Trainable`] model.
//!
//! Exact resume is a design goal: every random choice of a step (its batch and
//! its [`crate::trainable::Batch::seed`]) is derived from the scenario seed and
//! the step number, so a checkpoint needs no random-number-generator state — the
//! variables, the Adam moments, the step and the model's extra state suffice.

pub mod adam;
pub mod batches;
pub mod checkpoint;
pub mod clip;
pub mod deadline;
pub mod metrics;
pub mod run_dir;
pub mod run_lock;
pub mod schedule;
pub mod trainer;
pub mod update;

pub use adam::{Adam, AdamConfig};
pub use batches::{eval_seed, step_draw};
pub use checkpoint::{Checkpoint, ResumePoint, Totals};
pub use metrics::{StepRecord, StopReason, Validation};
pub use run_dir::{Claim, RunDir};
pub use run_lock::{LockHolder, RunLock, host_name};
pub use trainer::{TrainOptions, TrainOutcome, Trainer};
pub use update::{named_vars, update, update_shard};

#[cfg(test)]
mod tests;
