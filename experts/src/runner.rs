//! Running many experts at once on the CPU: rayon work-stealing over a flat list
//! of independent `(sample, expert)` problems, forward (Levenberg–Marquardt) and
//! backward (implicit function theorem).
//!
//! No expert waits for another, and no floating-point value is ever reduced
//! across tasks: every task writes only its own result and results come back in
//! input order, so the output is bit-identical for any number of threads.
//! Parallelism comes from the caller's rayon pool: run inside
//! `pool.install(|| …)` to choose the threads (a 1-thread pool runs serially).

use rayon::prelude::*;
use tessera_constraints::{
    ExpertProblem, HessianMode, LevenbergMarquardt, LmSolution, Pde, RowGradient, Sensitivity,
};

use crate::ExpertsError;

/// Solves every problem with `lm`, in parallel; `result[i]` belongs to `problems[i]`.
pub fn solve_experts<P: Pde>(
    pde: &P,
    problems: &[&ExpertProblem],
    lm: &LevenbergMarquardt,
) -> Result<Vec<LmSolution>, ExpertsError> {
    problems
        .par_iter()
        .with_max_len(1)
        .map(|problem| Ok(lm.solve(pde, problem)?))
        .collect()
}

/// One backward job: a problem, its solution weights and the upstream `ω̄`.
#[derive(Debug, Clone, Copy)]
pub struct BackwardJob<'a> {
    /// The problem solved in the forward pass.
    pub problem: &'a ExpertProblem,
    /// Its solution `ω*`.
    pub omega: &'a [f64],
    /// `∂L/∂ω*`.
    pub omega_bar: &'a [f64],
}

/// The problem gradient of every job in compact form ([`RowGradient`]: what the
/// layer pulls back to the basis), in parallel; `result[i]` belongs to `jobs[i]`.
pub fn differentiate_experts<P: Pde>(
    pde: &P,
    jobs: &[BackwardJob<'_>],
    mode: HessianMode,
) -> Result<Vec<RowGradient>, ExpertsError> {
    jobs.par_iter()
        .with_max_len(1)
        .map(|job| {
            let sensitivity = Sensitivity::new(pde, job.problem, job.omega, mode)?;
            Ok(sensitivity.row_gradient(job.problem, job.omega_bar)?)
        })
        .collect()
}
