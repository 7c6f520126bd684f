//! `tessera gradcheck --scenario FILE`: the whole model's autograd gradient
//! (backbone through the constraint layer and the losses) against finite
//! differences, for the soft, hard and mixture-of-experts methods (see
//! [`crate::model::gradcheck`]).

use std::path::PathBuf;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::Method;

use crate::model::gradcheck::{GradcheckOptions, gradcheck};

/// Arguments of the whole-model gradient check.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Override a scenario setting, e.g. `--set grid.nx=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Parameter entries checked per method.
    #[arg(long, default_value_t = GradcheckOptions::default().checks)]
    pub checks: usize,
    /// Largest finite-difference step (the check tries it and three smaller ones).
    #[arg(long, default_value_t = GradcheckOptions::default().step)]
    pub step: f64,
    /// Levenberg–Marquardt tolerance for the check (rtol = atol).
    #[arg(long, default_value_t = GradcheckOptions::default().tolerance)]
    pub tol: f64,
    /// Initial conditions per batch.
    #[arg(long, default_value_t = GradcheckOptions::default().batch)]
    pub batch: usize,
    /// Seed of the initial conditions, the checked entries and the points.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON (`max_rel_err`, `methods`, `checks`).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Runs the check on all three methods and prints the report.
    pub fn run(self) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        for assignment in &self.overrides {
            scenario.set(assignment)?;
        }
        let options = GradcheckOptions {
            methods: vec![Method::Soft, Method::Hard, Method::Moe],
            checks: self.checks,
            step: self.step,
            tolerance: self.tol,
            batch: self.batch,
            seed: self.seed,
            ..GradcheckOptions::default()
        };
        let report = gradcheck(&scenario, &options)?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            for m in &report.methods {
                println!(
                    "{:>4}: loss {:.6e}, max relative error {:.3e} over {} entries, {} unconverged solves",
                    m.method, m.loss, m.max_rel_err, self.checks, m.failed_solves
                );
            }
            println!("max relative error {:.3e}", report.max_rel_err);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn parses_the_documented_form() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "gradcheck",
            "--scenario",
            "scenarios/quickstart.toml",
            "--set",
            "grid.nx=64",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            cli.args.scenario,
            PathBuf::from("scenarios/quickstart.toml")
        );
        assert_eq!(cli.args.overrides, ["grid.nx=64"]);
        assert!(cli.args.json);
        assert_eq!(cli.args.checks, GradcheckOptions::default().checks);
        assert!(Cli::try_parse_from(["gradcheck"]).is_err());
    }
}
