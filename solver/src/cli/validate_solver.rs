//! `tessera validate-solver`: re-solve every sample of a data file from its
//! initial condition with our reference solver and report the relative L2
//! errors (see [`tessera_scenarios::dataset::validate_solver`]).

use std::path::PathBuf;

use tessera_scenarios::dataset::validate_solver;
use tessera_scenarios::{Dataset, Scenario};

/// Arguments of `tessera validate-solver`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML) giving the PDE constants and solver settings.
    scenario: PathBuf,
    /// Data file (`.safetensors`, or `.h5` with the `hdf5` feature).
    #[arg(long)]
    data: PathBuf,
    /// Override a scenario setting (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print JSON (`rel_l2`, `rel_l2_mean`, `solver_resolution`) instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Runs the check and prints the errors.
    pub fn run(self) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        for assignment in &self.overrides {
            scenario.set(assignment)?;
        }
        let dataset = Dataset::read(&self.data)?;
        let check = validate_solver(&scenario, &dataset, self.quiet)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&check)?);
        } else {
            for (i, err) in check.rel_l2.iter().enumerate() {
                println!("sample {i:04}: rel L2 {err:.3e}");
            }
            println!(
                "mean rel L2 {:.3e} over {} samples (solver resolution {})",
                check.rel_l2_mean,
                check.rel_l2.len(),
                check.solver_resolution
            );
        }
        Ok(())
    }
}
