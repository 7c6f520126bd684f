//! The training progress bar on stderr: step, estimated time left, loss, PDE
//! loss, mean LM iterations and failed solves, so a user sees a stalling solver
//! at once. Drawn from the library trainer's observer callback.

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_solver::{StepRecord, Totals};

/// A progress bar over a run's steps (hidden when `quiet`).
pub struct TrainingBar {
    bar: ProgressBar,
    /// Whether a step has been shown (the first one places a resumed run).
    started: bool,
}

impl TrainingBar {
    /// A bar over `steps` steps.
    pub fn new(steps: usize, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
        if let Ok(style) = ProgressStyle::with_template(
            "train [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        Self {
            bar,
            started: false,
        }
    }

    /// Shows `record` and the run's failed solves so far; the trainer's
    /// observer, never stopping the run.
    pub fn observe(&mut self, record: &StepRecord, totals: &Totals) -> ControlFlow<()> {
        if !self.started {
            // A resumed run starts past 0: the time estimate counts from here.
            self.bar.set_position(record.step.saturating_sub(1) as u64);
            self.bar.reset_eta();
            self.started = true;
        }
        let mut message = format!(
            "loss {:.3e} pde {:.3e} lm {:.1} failed {}",
            record.loss, record.pde, record.lm_iterations_mean, totals.failed_solves
        );
        if let Some(v) = &record.validation {
            message.push_str(&format!(
                " | val rel L2 {:.4} ± {:.4}",
                v.rel_l2_mean, v.rel_l2_std
            ));
        }
        self.bar.set_message(message);
        self.bar.set_position(record.step as u64);
        ControlFlow::Continue(())
    }

    /// Leaves the finished bar on screen.
    pub fn finish(&self) {
        self.bar.finish();
    }
}
