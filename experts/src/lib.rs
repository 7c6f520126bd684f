//! Mixture of constraint experts: the router splits the grid into tiles and
//! samples each expert's points, [`SampleTerms`] builds each expert's problem at
//! its points, the runner solves all `(sample, expert)` problems in parallel, and
//! [`ConstraintLayer`] is the end-to-end differentiable layer (`forward`: basis →
//! constrained solution; `backward`: `∂L/∂u` → `∂L/∂B`, pulled back in compact
//! form by the `pullback` module; `backward_with_ic` adds `∂L/∂ic` through the
//! rows' cotangents of the `row_cotangents` module). [`ExternalProblem`] reads one sample's
//! problem from a file another code wrote and solves it through the same layer.

pub mod comm;
pub mod error;
pub mod layer;
pub mod placement;
pub mod problem_file;
mod pullback;
pub mod router;
mod row_cotangents;
pub mod runner;
mod shard;
pub mod terms;

pub use error::ExpertsError;
pub use layer::{ConstraintLayer, Forward, LayerConfig, LayerGradient};
pub use problem_file::{ExternalProblem, ExternalSolution, ProblemFileError};
pub use router::{Router, RowScope};
pub use runner::{BackwardJob, differentiate_experts, solve_experts};
pub use shard::ExpertShard;
pub use terms::SampleTerms;

/// How many points one rayon task handles in the passes that run in parallel over
/// points (term rows at sampled points, full-grid passes). Fixed, never derived
/// from the thread count, so every value is computed by the same operations in
/// the same order for any number of threads; large enough to amortise a task.
const POINTS_PER_TASK: usize = 1024;
