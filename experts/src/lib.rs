//! Mixture of constraint experts: the router splits the grid into tiles and
//! gathers each expert's rows, the runner solves all `(sample, expert)` problems in
//! parallel, and [`ConstraintLayer`] is the end-to-end differentiable layer
//! (`forward`: basis → constrained solution; `backward`: `∂L/∂u` → `∂L/∂B`).

pub mod error;
pub mod layer;
pub mod router;
pub mod runner;
pub mod terms;

pub use error::ExpertsError;
pub use layer::{ConstraintLayer, Forward, LayerConfig};
pub use router::{Router, RowScope};
pub use runner::{BackwardJob, differentiate_experts, solve_experts};
pub use terms::TermFields;
