//! A wall-clock budget for one training process (`tessera train --max-time`):
//! a job scheduler kills a job at its time limit, usually mid-step, losing the
//! steps since the last periodic checkpoint. The trainer instead stops one step
//! early at a checkpoint of its own, so the run resumes from the last step done.

use std::time::{Duration, Instant};

/// A deadline and running estimates of what one more step and a checkpoint
/// save cost.
///
/// The estimates are the slowest step and the slowest save seen so far:
/// deliberately pessimistic, because the next step may be one that validates
/// (slower than most) and overrunning the budget loses the work that stopping
/// a step early only postpones.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    step: Duration,
    save: Option<Duration>,
}

impl Deadline {
    /// A budget that ends at `at`, with nothing measured yet.
    pub fn new(at: Instant) -> Self {
        Self {
            at,
            step: Duration::ZERO,
            save: None,
        }
    }

    /// Records how long a step took (its update, validation and logging).
    pub fn step_took(&mut self, took: Duration) {
        self.step = self.step.max(took);
    }

    /// Records how long a checkpoint save took.
    pub fn save_took(&mut self, took: Duration) {
        self.save = Some(self.save.map_or(took, |s| s.max(took)));
    }

    /// Whether one more step and a save, at the estimates, would end after the
    /// deadline if started at `now`. Before any save is measured a save is
    /// taken to cost a step: it writes the variables and the Adam moments
    /// once, far less work than a step's forward and backward pass.
    pub fn next_step_overruns(&self, now: Instant) -> bool {
        let save = self.save.unwrap_or(self.step);
        self.at.saturating_duration_since(now) < self.step.saturating_add(save)
    }
}
