//! Tessera's top level: backbone, hard-constrained model, losses, training,
//! evaluation, checkpoints and the `tessera` CLI.

pub mod backbone;
pub mod cli;
pub mod constraint_check;
pub mod data;
pub mod embed;
pub mod error;
pub mod eval;
pub mod malloc;
pub mod model;
pub mod plots;
pub mod problem_file;
pub mod train;
pub mod trainable;

pub use error::SolverError;
