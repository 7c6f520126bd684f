//! Tessera's top level: backbone, hard-constrained model, losses, training,
//! evaluation, checkpoints and the `tessera` CLI.

pub mod backbone;
pub mod cli;
pub mod constraint_check;
pub mod error;
pub mod model;
pub mod problem_file;
pub mod trainable;

pub use error::SolverError;
pub mod data;
pub mod eval;
pub mod plots;
pub mod train;
