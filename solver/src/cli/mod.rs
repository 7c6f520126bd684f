//! The `tessera` subcommands, one file each. Every subcommand fills a config from
//! its arguments and calls library code; no numerics live here.

use clap::{Parser, Subcommand};

mod bench;
mod bench_train_step;
mod constraint;
mod eval;
mod generate;
mod gradcheck;
mod gradcheck_scenario;
mod run;
mod train;
mod validate_solver;

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
    /// Check the constraint layer's gradient against finite differences.
    Gradcheck(gradcheck::Args),
    /// Benchmarks (`bench constraint`, …).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Constraint-layer tools (`constraint solve`).
    #[command(subcommand)]
    Constraint(constraint::Constraint),
    /// Generate a dataset from a scenario with the reference solver.
    Generate(generate::Args),
    /// Re-solve a data file's samples and report relative L2 errors.
    ValidateSolver(validate_solver::Args),
    /// The main job: data, training, evaluation, summary and plots in a run directory.
    Run(run::Args),
    /// Train (or `--resume`) without evaluating.
    Train(train::Args),
    /// Evaluate a trained run directory.
    Eval(eval::Args),
}

impl Cli {
    /// Runs the parsed subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Gradcheck(args) => args.run(),
            Command::Bench(bench) => bench.run(),
            Command::Constraint(constraint) => constraint.run(),
            Command::Generate(args) => args.run(),
            Command::ValidateSolver(args) => args.run(),
            Command::Run(args) => args.run(),
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
        }
    }
}
