//! The `tessera` subcommands, one file each. Every subcommand fills a config from
//! its arguments and calls library code; no numerics live here.

use clap::{Parser, Subcommand};

/// Tessera: neural PDE solvers with hard physical constraints, scaled by a
/// mixture of experts.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Each subcommand: `Name(module::Args)`, dispatched in `Cli::run`.
}

impl Cli {
    /// Runs the parsed subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {}
    }
}
