//! The `tessera` subcommands, one file each. Every subcommand fills a config from
//! its arguments and calls library code; no numerics live here.

use clap::{Parser, Subcommand};

mod bench;
mod bench_scaling;
mod bench_train_step;
mod constraint;
mod devices;
mod eval;
mod floor;
mod generate;
mod gradcheck;
mod gradcheck_scenario;
mod pde;
mod pde_arg;
mod predict;
mod run;
mod runs;
mod train;
mod validate_solver;

/// Tessera trains neural PDE solvers whose output satisfies the PDE as a hard
/// constraint, scaled to large grids by a mixture of experts (PI-HC-MoE).
///
/// Start with `tessera run scenarios/quickstart.toml`: it generates the data,
/// trains, evaluates and writes everything into a run directory.
#[derive(Debug, Parser)]
#[command(name = "tessera", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// In the order a user meets them: the main job, its parts, data, then the tools.
#[derive(Debug, Subcommand)]
enum Command {
    // Each subcommand: `Name(module::Args)`, dispatched in `Cli::run`.
    /// The main job: data, training, evaluation, summary and plots in a run directory.
    Run(run::Args),
    /// Train (or `--resume`) without evaluating.
    Train(train::Args),
    /// Evaluate a trained run directory.
    Eval(eval::Args),
    /// List the run directories under `runs/` (or given folders): scenario,
    /// method, steps, test error against persistence, start and build.
    Runs(runs::Args),
    /// Predict with a trained run from initial conditions in a file; write the
    /// fields as a dataset.
    Predict(predict::Args),
    /// Generate a dataset from a scenario with the reference solver.
    Generate(generate::Args),
    /// Re-solve a data file's samples and report relative L2 errors.
    ValidateSolver(validate_solver::Args),
    /// Check the constraint layer's gradient against finite differences.
    Gradcheck(gradcheck::Args),
    /// How close physics-only training could come to the test data on the
    /// scenario's discretisation: the training loss minimised over whole fields.
    Floor(floor::Args),
    /// PDEs defined in TOML (`pde check`, `pde emit --target cuda`).
    #[command(subcommand)]
    Pde(pde::Pde),
    /// Constraint-layer tools (`constraint solve`).
    #[command(subcommand)]
    Constraint(constraint::Constraint),
    /// Benchmarks (`bench constraint`, …).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// What this build and machine offer (features, CPU, CUDA driver, GPUs,
    /// NVRTC, NCCL); with `--device`, check that the device runs Tessera.
    Devices(devices::Args),
}

impl Cli {
    /// Runs the parsed subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => args.run(),
            Command::Train(args) => args.run(),
            Command::Eval(args) => args.run(),
            Command::Runs(args) => args.run(),
            Command::Predict(args) => args.run(),
            Command::Generate(args) => args.run(),
            Command::ValidateSolver(args) => args.run(),
            Command::Gradcheck(args) => args.run(),
            Command::Floor(args) => args.run(),
            Command::Pde(pde) => pde.run(),
            Command::Constraint(constraint) => constraint.run(),
            Command::Bench(bench) => bench.run(),
            Command::Devices(args) => args.run(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `tessera --help` introduces Tessera and lists the commands in the order
    /// a user meets them.
    #[test]
    fn help_says_what_tessera_is_and_orders_the_commands() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("hard"), "{help}");
        assert!(help.contains("mixture of experts"), "{help}");
        assert!(!help.contains("backbone, hard-constrained model"), "{help}");
        let order = [
            "run",
            "train",
            "eval",
            "generate",
            "validate-solver",
            "gradcheck",
            "floor",
            "pde",
            "constraint",
            "bench",
            "devices",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|name| {
                help.find(&format!("\n  {name} "))
                    .unwrap_or_else(|| panic!("{name} not listed: {help}"))
            })
            .collect();
        assert!(positions.is_sorted(), "{positions:?}\n{help}");
    }
}
