//! The contract between a model and the trainer: the trainer only needs the
//! model's variables, a differentiable loss for a batch and predictions for
//! evaluation, so training, checkpoints and evaluation are written once for the
//! soft, hard and mixture-of-experts methods.

use candle_core::{Shape, Tensor};
use candle_nn::VarMap;

use crate::SolverError;
use crate::parallel::{DataShard, ParallelError};
use crate::phases::PhaseClock;

/// One training batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Initial conditions, one per sample, each flattened row-major over the
    /// spatial grid `[X]` or `[X, Y]`.
    pub ics: Vec<Vec<f64>>,
    /// Ground-truth trajectories `[T, X, (Y)]` row-major, one per sample, when the
    /// scenario has an interior data loss; `None` otherwise.
    pub targets: Option<Vec<Vec<f64>>>,
    /// Seed of everything random in this step (the experts' sampled points), so a
    /// resumed run repeats the same draws: the trainer derives it from the
    /// scenario seed and the step number.
    pub seed: u64,
}

/// The loss of one batch and what the trainer reports about it.
#[derive(Debug, Clone)]
pub struct StepLoss {
    /// The weighted training loss, a differentiable scalar.
    pub total: Tensor,
    /// Unweighted loss parts, for metrics.
    pub pde: f64,
    pub ic: f64,
    pub bc: f64,
    pub data: f64,
    /// Mean Levenberg–Marquardt iterations over this batch's solves (0 for soft).
    pub lm_iterations_mean: f64,
    /// Solves whose status is not `converged`.
    pub failed_solves: usize,
    /// All solves of this batch (`batch × experts`; 0 for soft).
    pub solves: usize,
    /// The variables' gradients, one per sample of this rank, when the model
    /// computed them itself to be added in global sample order
    /// (`parallel.reproducible`); `None`: back-propagate `total`.
    pub gradients: Option<SampleGradients>,
}

/// Per-sample gradients of the variables, for a sum in global sample order.
#[derive(Debug, Clone)]
pub struct SampleGradients {
    /// Names and shapes of the variables, in name order: the layout of each
    /// flat gradient.
    pub layout: Vec<(String, Shape)>,
    /// One flat f64 gradient per sample of this rank, in sample order.
    pub samples: Vec<Vec<f64>>,
}

/// Predicted trajectories for evaluation.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// One trajectory `[T, X, (Y)]` row-major per initial condition.
    pub fields: Vec<Vec<f64>>,
    /// Solves whose status is not `converged`.
    pub failed_solves: usize,
}

/// What the trainer needs from a model.
pub trait Trainable {
    /// The trainable variables (what the optimiser updates and checkpoints hold).
    fn vars(&self) -> &VarMap;
    /// The training loss of `batch`. Takes `&mut self` because a model may keep
    /// state between steps (warm-started constraint weights).
    fn loss(&mut self, batch: &Batch) -> Result<StepLoss, SolverError>;
    /// The training loss of the global `batch` of which this rank computes the
    /// samples `shard.range(..)`; the value and the statistics are those of the
    /// whole batch, identical on every rank, and the gradient reaches only this
    /// rank's share (the trainer sums it over the ranks). The default supports
    /// one rank only.
    fn loss_shard(
        &mut self,
        batch: &Batch,
        shard: &DataShard<'_>,
    ) -> Result<StepLoss, SolverError> {
        if shard.is_whole() {
            self.loss(batch)
        } else {
            Err(ParallelError::DataParallelUnsupported.into())
        }
    }
    /// Variable groups the optimiser leaves alone, each the leading segments of
    /// its variables' names (see `training.freeze`); none by default.
    fn frozen(&self) -> &[String] {
        &[]
    }
    /// Predictions for `ics` without gradients; `seed` fixes the sampled points.
    fn predict(&mut self, ics: &[Vec<f64>], seed: u64) -> Result<Prediction, SolverError>;
    /// State beyond the variables that an exact resume needs (e.g. warm-start
    /// weights), as named f64 arrays; empty by default.
    fn extra_state(&self) -> Vec<(String, Vec<f64>)> {
        Vec::new()
    }
    /// Restores what [`Trainable::extra_state`] returned.
    fn restore_extra_state(&mut self, _state: &[(String, Vec<f64>)]) -> Result<(), SolverError> {
        Ok(())
    }
    /// The clock the model's steps add their phases' wall time to (the
    /// optimiser's phase is added by [`crate::update()`]); none by default.
    fn phases(&self) -> Option<&PhaseClock> {
        None
    }
    /// Where a backbone on the CPU leaves its packed parameter gradient
    /// when the trainer arms it for a step, instead of candle's graph
    /// carrying it to the variables
    /// ([`crate::HostGradientSlot`]); none by default.
    /// A model whose [`Trainable::loss_shard`] returns per-sample gradients
    /// must return none.
    fn host_gradient_slot(&self) -> Option<std::sync::Arc<crate::HostGradientSlot>> {
        None
    }
    /// Where a backbone on a GPU leaves its parameter gradient for Adam on
    /// that GPU, when the trainer arms it for a step
    /// ([`crate::device::GradientSlot`]); none by default (the gradient
    /// reaches the variables on the host). A model whose
    /// [`Trainable::loss_shard`] returns per-sample gradients must return none.
    #[cfg(feature = "cuda")]
    fn gradient_slot(&self) -> Option<std::sync::Arc<crate::device::GradientSlot>> {
        None
    }
}
