//! `tessera floor`: how close physics-only training could come to the ground
//! truth on a scenario's discretisation (see [`tessera_solver::physics_floor`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tessera_solver::{FloorOptions, LbfgsStop, RunData, physics_floor};

use super::train::load_scenario;

/// Arguments of `tessera floor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Override a scenario setting, e.g. `--set pde.boundary=faces` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Test trajectories (the first of the test split).
    #[arg(long, default_value_t = FloorOptions::default().samples)]
    samples: usize,
    /// L-BFGS iterations per trajectory, at most.
    #[arg(long, default_value_t = FloorOptions::default().iterations)]
    iterations: usize,
    /// Print the report as one JSON line on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar while the test data is generated.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Loads the test split, minimises the training loss from each trajectory
    /// and prints the distances.
    pub fn run(self) -> anyhow::Result<()> {
        let scenario = load_scenario(&self.scenario, &self.overrides)?;
        let (test, _) =
            RunData::load_test(&scenario, self.quiet).context("obtaining the test data")?;
        let options = FloorOptions {
            samples: self.samples,
            iterations: self.iterations,
        };
        let start = Instant::now();
        let floor = physics_floor(&scenario, &test, &options)?;
        if self.json {
            println!("{}", serde_json::to_string(&floor)?);
            return Ok(());
        }
        let [pde, ic, bc, data] = floor.weights;
        println!(
            "physics floor of {} ({} test trajectories, loss weights pde {pde}, ic {ic}, bc {bc}, data {data}; {:.1} s)",
            scenario.name,
            floor.rel_l2.len(),
            start.elapsed().as_secs_f64()
        );
        println!(
            "  distance from the truth (rel. L2)  {:.4} ± {:.4}",
            floor.rel_l2_mean, floor.rel_l2_std
        );
        for (what, value, parts) in [
            ("at the floor", floor.loss, &floor.floor),
            ("at the truth", floor.loss_truth, &floor.truth),
        ] {
            println!(
                "  training loss {what}  {value:.4}  (pde {:.4}, ic {:.4}, bc {:.4})",
                parts.pde, parts.ic, parts.bc
            );
        }
        let iterations = floor.iterations.iter().max().copied().unwrap_or(0);
        let gradient = floor.gradient_norms.iter().copied().fold(0.0, f64::max);
        let mut stops: Vec<(LbfgsStop, usize)> = Vec::new();
        for &stop in &floor.stops {
            match stops.iter_mut().find(|(s, _)| *s == stop) {
                Some((_, n)) => *n += 1,
                None => stops.push((stop, 1)),
            }
        }
        let stops: Vec<String> = stops
            .iter()
            .map(|(stop, n)| {
                format!(
                    "{n} {}",
                    serde_json::to_value(stop)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("?")
                )
            })
            .collect();
        println!(
            "  L-BFGS: up to {iterations} iterations, stopped {}, largest final gradient norm {gradient:.1e}",
            stops.join(", ")
        );
        Ok(())
    }
}
