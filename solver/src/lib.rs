//! Tessera's top level: backbone, hard-constrained model, losses, training,
//! evaluation, checkpoints and the `tessera` CLI.

pub mod cli;
