//! Embedding Tessera in another program: load a trained run and predict, or use
//! the hard-constraint layer on your own arrays.
//!
//! ```no_run
//! use tessera_solver::embed::TrainedModel;
//!
//! # fn main() -> Result<(), tessera_solver::SolverError> {
//! let model = TrainedModel::load("runs/quickstart-moe-1764000000")?;
//! let ic = vec![0.0; model.ic_len()]; // one initial condition, [X] or [X, Y]
//! let out = model.predict(&ic, 2)?; // on 2 threads
//! assert_eq!(out.field(0).len(), model.field_len()); // [T, X, (Y)]
//! for status in out.statuses_of(0) {
//!     println!("{:?} after {} iterations", status.reason, status.iterations);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - [`TrainedModel`]: `load(run_dir)` reads `config.toml` and
//!   `checkpoint.safetensors`; `predict(&self, ics, threads)` returns the
//!   constrained fields and every expert's solver status; `forward` keeps a
//!   prediction ([`ModelForward`]) whose `backward` gives the gradient in the
//!   initial conditions, for data assimilation and inverse problems.
//! - [`ConstraintProjection`]: the constraint layer of a scenario on
//!   caller-owned `f64` slices, without candle: `solve` projects a basis onto
//!   the PDE's constraints, `backward` pulls a gradient back to the basis.
//! - [`WorkerPool`]: the threads a call runs on, chosen by the caller.
//! - [`read_initial_conditions`]: initial conditions from a dataset or a
//!   bare `ic` tensor, on a model's grid; [`TrainedModel::dataset`] turns
//!   predictions into a dataset to write (`tessera predict`).
//!
//! Arrays are row-major, `[batch, t, x, (y), channel]` (see each method).
//! Results never depend on the number of threads.

mod initial_file;
mod pool;
mod projection;
mod trained_model;

pub use initial_file::{IC_TENSOR, read_initial_conditions};
pub use pool::WorkerPool;
pub use projection::ConstraintProjection;
pub use tessera_constraints::{LmStatus, StopReason};
pub use tessera_experts::{Forward, LayerGradient};
pub use trained_model::{ModelForward, Predictions, TrainedModel};

use crate::SolverError;

/// How many arrays of shape `dims` (row-major) `values` holds: a positive
/// whole number, else a [`SolverError::ShapeMismatch`] naming `what`.
fn batch_of(values: &[f64], dims: &[usize], what: &'static str) -> Result<usize, SolverError> {
    let n: usize = dims.iter().product();
    if values.is_empty() || n == 0 || !values.len().is_multiple_of(n) {
        return Err(SolverError::ShapeMismatch {
            what,
            expected: dims.to_vec(),
            got: vec![values.len()],
        });
    }
    Ok(values.len() / n)
}

/// A [`SolverError::NonFinite`] if `values` holds NaN or infinities.
fn check_finite(what: &'static str, values: &[f64]) -> Result<(), SolverError> {
    let count = values.iter().filter(|v| !v.is_finite()).count();
    if count > 0 {
        return Err(SolverError::NonFinite { what, count });
    }
    Ok(())
}
