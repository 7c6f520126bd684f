//! Progress bars on stderr, drawn from the library's observer callbacks: the
//! training's (step, estimated time left, loss, PDE loss, mean LM iterations
//! and failed solves, so a user sees a stalling solver at once) and the
//! evaluation's (samples done on each grid, their mean error and failed
//! solves).

use std::ops::ControlFlow;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_solver::{EvalProgress, StepRecord, Totals};

/// A bar over `len` items drawn with `template` (hidden when `quiet`).
fn bar(len: usize, quiet: bool, template: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

const TRAIN: &str = "train [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}";
const EVAL: &str = "eval at {prefix} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}";

/// A progress bar over a run's steps (hidden when `quiet`).
pub struct TrainingBar {
    bar: ProgressBar,
    /// Whether a step has been shown (the first one places a resumed run).
    started: bool,
}

impl TrainingBar {
    /// A bar over `steps` steps.
    pub fn new(steps: usize, quiet: bool) -> Self {
        Self {
            bar: bar(steps, quiet, TRAIN),
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

const PREDICT: &str = "predict [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}";

/// A progress bar over `samples` predictions (hidden when `quiet`); its
/// message is left to the caller (the solves that did not converge).
pub fn prediction_bar(samples: usize, quiet: bool) -> ProgressBar {
    bar(samples, quiet, PREDICT)
}

/// A progress bar over an evaluation's samples, one per grid evaluated (the
/// model's own, then each of `eval.resolutions`), each left on screen when
/// the next starts.
pub struct EvalBar {
    quiet: bool,
    /// The grid being drawn and its bar.
    current: Option<(Vec<usize>, ProgressBar)>,
}

impl EvalBar {
    /// No bar until the first report (hidden when `quiet`).
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            current: None,
        }
    }

    /// Shows `progress`; the evaluation's observer.
    pub fn observe(&mut self, progress: &EvalProgress) {
        if self.current.as_ref().map(|(grid, _)| grid) != Some(&progress.grid) {
            if let Some((_, done)) = self.current.take() {
                done.finish();
            }
            let next = bar(progress.total, self.quiet, EVAL);
            next.set_prefix(grid_name(&progress.grid));
            self.current = Some((progress.grid.clone(), next));
        }
        if let Some((_, bar)) = &self.current {
            bar.set_message(format!(
                "rel L2 {:.4} failed {}",
                progress.rel_l2_mean, progress.failed_solves
            ));
            bar.set_position(progress.done as u64);
        }
    }

    /// Leaves the last bar on screen.
    pub fn finish(&self) {
        if let Some((_, bar)) = &self.current {
            bar.finish();
        }
    }
}

/// A grid's spatial points as a user writes them: `1024`, `64²`, `8×16`.
fn grid_name(grid: &[usize]) -> String {
    match grid {
        [n, m] if n == m => format!("{n}²"),
        [n, m, k] if n == m && m == k => format!("{n}³"),
        _ => grid
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("×"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_named_as_written() {
        assert_eq!(grid_name(&[1024]), "1024");
        assert_eq!(grid_name(&[64, 64]), "64²");
        assert_eq!(grid_name(&[8, 16]), "8×16");
        assert_eq!(grid_name(&[4, 4, 4]), "4³");
    }

    #[test]
    fn each_grid_gets_its_own_bar() {
        let mut bars = EvalBar::new(true);
        let at = |grid: Vec<usize>, done, total| EvalProgress {
            grid,
            done,
            total,
            rel_l2_mean: 0.5,
            failed_solves: 1,
        };
        bars.observe(&at(vec![64, 64], 4, 100));
        bars.observe(&at(vec![64, 64], 8, 100));
        let (grid, bar) = bars.current.as_ref().unwrap();
        assert_eq!(
            (grid.as_slice(), bar.position(), bar.length()),
            (&[64, 64][..], 8, Some(100))
        );
        assert_eq!(bar.prefix(), "64²");
        assert_eq!(bar.message(), "rel L2 0.5000 failed 1");
        bars.observe(&at(vec![128, 128], 1, 100));
        let (grid, bar) = bars.current.as_ref().unwrap();
        assert_eq!((grid.as_slice(), bar.position()), (&[128, 128][..], 1));
        assert_eq!(bar.prefix(), "128²");
        bars.finish();
    }
}
