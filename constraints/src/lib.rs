//! Hard physical constraints: the PDE-residual trait, one expert's least-squares
//! problem, its float64 Levenberg–Marquardt solve and the implicit-function-theorem
//! backward pass.
//!
//! The path of one expert: build an [`ExpertProblem`] (rows gathered at its
//! sampled points), solve it with [`LevenbergMarquardt`] (an [`LmSolution`] with an
//! [`LmStatus`]), then build a [`Sensitivity`] at `ω*` and ask it for the
//! [`ProblemGradient`] (or its compact [`RowGradient`]) of any upstream `ω̄`. [`FieldResidual`] is the full-grid
//! PDE residual the physics loss needs.

mod dense;
pub mod error;
pub mod expr;
pub mod field_residual;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod ift;
pub mod lm;
mod normal_equations;
pub mod pde;
pub mod pointwise;
pub mod problem;
pub mod status;

pub use error::ConstraintError;
pub use field_residual::FieldResidual;
pub use ift::{HessianMode, ProblemGradient, RowGradient, Sensitivity};
pub use lm::{InitialGuess, LevenbergMarquardt, LmSolution};
pub use pde::{
    LinearRow, LinearRowBar, Pde, Term, check_cotangents, residual_term_count, sum_repeats,
};
pub use problem::{DEFAULT_RIDGE, ExpertProblem, ProblemSize};
pub use status::{LmStatus, StopReason};
