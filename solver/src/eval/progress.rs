//! Where an evaluation stands, reported after every chunk of samples: at the
//! paper's Navier–Stokes scale the final evaluation runs for most of an hour
//! (100 samples at 64², 128² and 256², about 20 s per sample at the finest),
//! and a user watching it should see how far it got, how fast it goes and
//! whether its solves fail, not a silent process.

/// One report of an evaluation's progress on one grid.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalProgress {
    /// Points per spatial axis of the grid being evaluated: the model's own
    /// first, then each of `eval.resolutions` evaluated on its own grid.
    pub grid: Vec<usize>,
    /// Samples evaluated on this grid so far, and in all.
    pub done: usize,
    pub total: usize,
    /// Mean relative L2 error of the samples done.
    pub rel_l2_mean: f64,
    /// Solves on this grid so far whose status is not `converged`.
    pub failed_solves: usize,
}

impl EvalProgress {
    pub(super) fn new(grid: &[usize], rel_l2: &[f64], total: usize, failed_solves: usize) -> Self {
        Self {
            grid: grid.to_vec(),
            done: rel_l2.len(),
            total,
            rel_l2_mean: super::mean_std(rel_l2).0,
            failed_solves,
        }
    }
}

/// What an evaluation calls with each [`EvalProgress`] (a progress bar, a
/// log line); `&mut |_| {}` where nobody watches.
pub type EvalObserver<'a> = &'a mut dyn FnMut(&EvalProgress);
