//! The training progress bar on stderr: step, loss, PDE loss, mean LM
//! iterations and failed solves, so a user sees a stalling solver at once.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::metrics::StepRecord;

/// A progress bar over the run's steps (hidden when `quiet`).
pub(crate) fn bar(steps: usize, start: usize, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
    if let Ok(style) =
        ProgressStyle::with_template("train [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_position(start as u64);
    bar
}

/// Shows `record` and the run's failed solves so far.
pub(crate) fn show(bar: &ProgressBar, record: &StepRecord, failed_total: usize) {
    let mut message = format!(
        "loss {:.3e} pde {:.3e} lm {:.1} failed {failed_total}",
        record.loss, record.pde, record.lm_iterations_mean
    );
    if let Some(v) = &record.validation {
        message.push_str(&format!(
            " | val rel L2 {:.4} ± {:.4}",
            v.rel_l2_mean, v.rel_l2_std
        ));
    }
    bar.set_message(message);
    bar.set_position(record.step as u64);
}
