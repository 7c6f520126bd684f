//! `tessera gradcheck`: the constraint layer's IFT gradient against central finite
//! differences (see [`crate::constraint_check::gradcheck`]).

use std::path::PathBuf;

use clap::ArgGroup;

use tessera_scenarios::PdeKind;
use tessera_solver::GradcheckOptions;

use super::{gradcheck_scenario, pde_arg};
use crate::constraint_check::{GradcheckConfig, GridSize, gradcheck, parse_split};
use crate::device::DeviceArg;

/// Arguments of `tessera gradcheck`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("target").required(true).args(["pde", "scenario"])))]
pub struct Args {
    /// Check the constraint layer alone for this PDE, on a random smooth basis.
    #[arg(long, value_parser = pde_arg::parser())]
    pde: Option<PdeKind>,
    /// Check the whole model of this scenario file (backbone, constraint layer and
    /// training loss) for the soft, hard and moe methods.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override a scenario setting, e.g. `--set grid.nx=64` (repeatable; with --scenario).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "pde")]
    overrides: Vec<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// Initial conditions per batch (with --scenario) [default: 2].
    #[arg(long, conflicts_with = "pde")]
    batch: Option<usize>,
    /// Tile split, e.g. 1x4 or 1x2x2 [default: 1x4, or 1x2x2 for navier-stokes].
    #[arg(long)]
    experts: Option<String>,
    /// Points sampled per expert.
    #[arg(long, default_value_t = 2000)]
    points: usize,
    /// Number of basis functions N.
    #[arg(long, default_value_t = 16)]
    basis: usize,
    /// Time levels [default: 41, or 16 for navier-stokes].
    #[arg(long)]
    nt: Option<usize>,
    /// Points along x [default: 256, or 32 for navier-stokes].
    #[arg(long)]
    nx: Option<usize>,
    /// Points along y (navier-stokes) [default: 32].
    #[arg(long)]
    ny: Option<usize>,
    /// Random directions (--pde) or parameter entries per method (--scenario)
    /// checked [default: 6, or the scenario check's default].
    #[arg(long)]
    checks: Option<usize>,
    /// Relative finite-difference step (--pde: the larger of the two Richardson
    /// steps; --scenario: the largest of four tried) [default: 1e-6, or the
    /// scenario check's default].
    #[arg(long)]
    step: Option<f64>,
    /// Levenberg–Marquardt tolerance, rtol = atol [default: 1e-14, or the
    /// scenario check's default].
    #[arg(long)]
    tol: Option<f64>,
    /// Seed of the basis, functional, directions and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Runs the check and prints its report.
    pub fn run(self) -> anyhow::Result<()> {
        let Some(pde) = self.pde else {
            return self.scenario_check().run();
        };
        let split = match &self.experts {
            Some(text) => parse_split(text)?,
            None if pde == PdeKind::NavierStokes => vec![1, 2, 2],
            None => vec![1, 4],
        };
        let default_grid = GridSize::gradcheck_default(pde);
        let config = GradcheckConfig {
            points_per_expert: self.points,
            n_basis: self.basis,
            grid: GridSize {
                nt: self.nt.unwrap_or(default_grid.nt),
                nx: self.nx.unwrap_or(default_grid.nx),
                ny: self.ny.or(default_grid.ny),
            },
            checks: self.checks.unwrap_or(6),
            step: self.step.unwrap_or(1e-6),
            tolerance: self.tol.unwrap_or(1e-14),
            seed: self.seed,
            ..GradcheckConfig::new(pde, &split)
        };
        let report = gradcheck(&config)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} experts {:?}, {} points/expert, N = {}, grid {:?}: max relative error {:.3e} over {} directions, {:.3e} along the initial condition (LM converged: {})",
                report.pde,
                report.experts,
                report.points,
                report.basis,
                report.grid,
                report.max_rel_err,
                report.checks,
                report.ic_max_rel_err,
                report.converged
            );
        }
        Ok(())
    }
}

impl Args {
    /// The whole-model check these arguments ask for (clap's group guarantees
    /// `--scenario` when `--pde` is absent).
    fn scenario_check(self) -> gradcheck_scenario::Args {
        let defaults = GradcheckOptions::default();
        gradcheck_scenario::Args {
            scenario: self.scenario.unwrap_or_default(),
            overrides: self.overrides,
            device: self.device,
            checks: self.checks.unwrap_or(defaults.checks),
            step: self.step.unwrap_or(defaults.step),
            tol: self.tol.unwrap_or(defaults.tolerance),
            batch: self.batch.unwrap_or(defaults.batch),
            seed: self.seed,
            json: self.json,
        }
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
    fn parses_both_documented_forms() {
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
        let check = cli.args.scenario_check();
        assert_eq!(check.scenario, PathBuf::from("scenarios/quickstart.toml"));
        assert_eq!(check.overrides, ["grid.nx=64"]);
        assert!(check.json);
        assert_eq!(check.checks, GradcheckOptions::default().checks);
        let cli =
            Cli::try_parse_from(["gradcheck", "--pde", "navier-stokes", "--checks", "3"]).unwrap();
        assert_eq!(cli.args.pde, Some(PdeKind::NavierStokes));
        assert_eq!(cli.args.checks, Some(3));
        assert!(Cli::try_parse_from(["gradcheck"]).is_err());
        assert!(
            Cli::try_parse_from(["gradcheck", "--pde", "heat", "--scenario", "a.toml"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["gradcheck", "--pde", "diffusion-sorption", "--set", "a=1"])
                .is_err()
        );
    }
}
