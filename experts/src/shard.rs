//! Expert parallelism: the ranks of one group split the Levenberg–Marquardt
//! solves of a batch by expert.
//!
//! Every rank of the group holds the same batch (the backbone and the problem
//! building are replicated inside a group; the data axis splits the batch
//! between groups). Each rank solves only the problems of the experts it owns
//! (a [`crate::placement`]), for every sample, and sends each solution (weights
//! and status: `N + 5` numbers) to every rank of the group. Every rank then
//! holds every solution, bit for bit what a single process computes, because a
//! problem's solve depends on nothing but the problem: the forward pass, the
//! backward pass (run on every rank from the same data) and the training
//! trajectory are those of one process, whatever the group size and placement.
//!
//! What moves is one small message per expert and sample; no basis, grid or
//! problem data ever travels. The price is what stays replicated: the
//! backbone, building the problems and the implicit-function-theorem backward
//! run on every rank of the group, so the split speeds up the solves only
//! (benches/README.md has the share they take of a step).

use std::ops::Range;

use tessera_constraints::{
    ExpertProblem, LevenbergMarquardt, LmSolution, LmStatus, Pde, StopReason,
};

use crate::comm::{CommError, Communicator};
use crate::{ExpertsError, runner};

/// One rank's view of its expert-parallel group.
pub struct ExpertShard<'c> {
    comm: &'c dyn Communicator,
    /// The world ranks of the group, in order.
    group: Range<usize>,
    /// Per expert, the index in `group` of the rank that solves it.
    owners: Vec<usize>,
}

/// Numbers per solution besides the weights: reason, iterations, the initial
/// and final residuals and the gradient norm.
const STATUS_LEN: usize = 5;

impl<'c> ExpertShard<'c> {
    /// The group `group` (world ranks, containing `comm.rank()`) with expert
    /// `k` solved by rank `group.start + owners[k]`.
    ///
    /// Errors: this rank outside the group, the group outside the world, or an
    /// owner outside the group.
    pub fn new(
        comm: &'c dyn Communicator,
        group: Range<usize>,
        owners: Vec<usize>,
    ) -> Result<Self, ExpertsError> {
        let size = comm.size();
        if group.end > size || !group.contains(&comm.rank()) {
            return Err(CommError::NoSuchRank {
                rank: comm.rank(),
                size: group.len(),
            }
            .into());
        }
        if let Some(&owner) = owners.iter().find(|&&o| o >= group.len()) {
            return Err(CommError::NoSuchRank {
                rank: owner,
                size: group.len(),
            }
            .into());
        }
        Ok(Self {
            comm,
            group,
            owners,
        })
    }

    /// Number of experts.
    pub fn n_experts(&self) -> usize {
        self.owners.len()
    }

    /// Solves `problems` (`[batch, experts]`, sample-major) with `lm`: this
    /// rank its own experts' share, then every solution on every rank of the
    /// group, in input order.
    ///
    /// Errors: not a whole number of samples, a solve's own error, or a
    /// transport failure.
    pub fn solve<P: Pde>(
        &self,
        pde: &P,
        problems: &[&ExpertProblem],
        lm: &LevenbergMarquardt,
    ) -> Result<Vec<LmSolution>, ExpertsError> {
        let k = self.n_experts();
        if k == 0 || !problems.len().is_multiple_of(k) {
            return Err(ExpertsError::ShapeMismatch {
                what: "problems [batch, experts]",
                expected: vec![problems.len() / k.max(1), k],
                got: vec![problems.len()],
            });
        }
        let me = self.comm.rank() - self.group.start;
        let owned =
            |member: usize| (0..problems.len()).filter(move |i| self.owners[i % k] == member);
        let mine: Vec<&ExpertProblem> = owned(me).map(|i| problems[i]).collect();
        let solved = runner::solve_experts(pde, &mine, lm)?;
        let packed: Vec<f64> = solved.iter().flat_map(pack).collect();
        let send: Vec<Vec<f64>> = (0..self.comm.size())
            .map(|r| {
                if self.group.contains(&r) {
                    packed.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        let received = self.comm.all_to_all_v(&send)?;
        let mut solutions: Vec<Option<LmSolution>> = vec![None; problems.len()];
        for (member, rank) in self.group.clone().enumerate() {
            let mut values = received[rank].as_slice();
            for i in owned(member) {
                let len = problems[i].n_basis() + STATUS_LEN;
                let (one, rest) = values
                    .split_at_checked(len)
                    .ok_or_else(|| truncated(rank))?;
                solutions[i] = Some(unpack(one, rank)?);
                values = rest;
            }
            if !values.is_empty() {
                return Err(truncated(rank));
            }
        }
        Ok(solutions
            .into_iter()
            .map(|s| s.expect("every expert has an owner in the group"))
            .collect())
    }
}

/// `[ω…, reason, iterations, initial residual, final residual, ‖Jᵀr‖]`; every
/// value is exact in f64.
fn pack(solution: &LmSolution) -> impl Iterator<Item = f64> + '_ {
    let s = &solution.status;
    let reason = match s.reason {
        StopReason::Converged => 0.0,
        StopReason::MaxIterations => 1.0,
        StopReason::NonFinite => 2.0,
        StopReason::Singular => 3.0,
    };
    solution.omega.iter().copied().chain([
        reason,
        s.iterations as f64,
        s.initial_residual,
        s.final_residual,
        s.gradient_norm,
    ])
}

fn unpack(values: &[f64], rank: usize) -> Result<LmSolution, ExpertsError> {
    let (omega, status) = values.split_at(values.len() - STATUS_LEN);
    let reason = match status[0] {
        0.0 => StopReason::Converged,
        1.0 => StopReason::MaxIterations,
        2.0 => StopReason::NonFinite,
        3.0 => StopReason::Singular,
        _ => return Err(truncated(rank)),
    };
    Ok(LmSolution {
        omega: omega.to_vec(),
        status: LmStatus {
            reason,
            iterations: status[1] as usize,
            initial_residual: status[2],
            final_residual: status[3],
            gradient_norm: status[4],
        },
    })
}

fn truncated(rank: usize) -> ExpertsError {
    CommError::Transport {
        op: "expert solutions exchange",
        reason: format!("rank {rank} sent a malformed list of solutions"),
    }
    .into()
}
