//! The `tessera` command-line tool: a thin layer that parses arguments, calls
//! the `tessera-solver` library and draws what a user watches (progress bars,
//! plots); plus the constraint-layer tools (gradient check, problem files,
//! benchmarks).

mod commands;
mod constraint_check;
mod device;
mod duration;
mod error;
mod interrupt;
mod malloc;
mod memory;
mod output_path;
mod plots;
mod progress;
mod provenance;
mod report;
mod run_name;
mod utc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    malloc::tune_for_training();
    match commands::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<interrupt::Interrupted>() {
            // The run said where it stopped and how to continue.
            Some(interrupted) => ExitCode::from(interrupted.exit_code()),
            None => {
                eprintln!("{}", report::error_report(&error));
                ExitCode::FAILURE
            }
        },
    }
}

/// Fixtures shared with the library's tests.
#[cfg(test)]
#[path = "../../tests/train_support/mod.rs"]
mod test_support;
