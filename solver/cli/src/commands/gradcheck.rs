//! `tessera gradcheck`: the constraint layer's IFT gradient against central finite
//! differences (see [`crate::constraint_check::gradcheck`]).

use std::path::PathBuf;

use clap::ArgGroup;

use tessera_scenarios::PdeKind;
use tessera_solver::GradcheckOptions;

use super::{gradcheck_scenario, pde_arg};
use crate::constraint_check::{GradcheckConfig, GridSize, gradcheck, parse_split};
use crate::device::{Device, DeviceArg};

/// Headings of `--help`: the flags that size the synthetic problem belong to
/// `--pde`, those that change the scenario to `--scenario` (each refused with
/// the other, as that check would ignore them); the rest apply to both.
const PDE_ONLY: &str = "With --pde (the constraint layer alone)";
const SCENARIO_ONLY: &str = "With --scenario (the whole model)";

/// Arguments of `tessera gradcheck`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("target").required(true).args(["pde", "scenario"])))]
pub struct Args {
    /// Check the constraint layer alone for this PDE, on a random smooth basis
    /// (on a GPU, `--device`, the PDE's own TOML definition in scenarios/pdes/
    /// is solved there).
    #[arg(long, value_parser = pde_arg::parser())]
    pde: Option<PdeKind>,
    /// Check the whole model of this scenario file (backbone, constraint layer and
    /// training loss) for the soft, hard and moe methods.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override a scenario setting, e.g. `--set grid.nx=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "pde", help_heading = SCENARIO_ONLY)]
    overrides: Vec<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// Initial conditions per batch [default: 2].
    #[arg(long, conflicts_with = "pde", help_heading = SCENARIO_ONLY)]
    batch: Option<usize>,
    /// Tile split, e.g. 1x4 or 1x2x2 [default: 1x4, or 1x2x2 for navier-stokes].
    #[arg(long, conflicts_with = "scenario", help_heading = PDE_ONLY)]
    experts: Option<String>,
    /// Points sampled per expert.
    #[arg(long, default_value_t = 2000, conflicts_with = "scenario", help_heading = PDE_ONLY)]
    points: usize,
    /// Number of basis functions N.
    #[arg(long, default_value_t = 16, conflicts_with = "scenario", help_heading = PDE_ONLY)]
    basis: usize,
    /// Time levels [default: 41, or 16 for navier-stokes].
    #[arg(long, conflicts_with = "scenario", help_heading = PDE_ONLY)]
    nt: Option<usize>,
    /// Points along x [default: 256, or 32 for navier-stokes].
    #[arg(long, conflicts_with = "scenario", help_heading = PDE_ONLY)]
    nx: Option<usize>,
    /// Points along y (navier-stokes) [default: 32].
    #[arg(long, conflicts_with = "scenario", help_heading = PDE_ONLY)]
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
            device: self.device.chosen().unwrap_or(Device::Cpu),
            ..GradcheckConfig::new(pde, &split)
        };
        let report = gradcheck(&config)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} on {}, experts {:?}, {} points/expert, N = {}, grid {:?}: max relative error {:.3e} over {} directions, {:.3e} along the initial condition (LM converged: {})",
                report.pde,
                report.device,
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

    /// The heading `flag` is listed under in `help`.
    fn heading_of<'h>(help: &'h str, flag: &str) -> &'h str {
        let at = help
            .find(&format!("  {flag} "))
            .unwrap_or_else(|| panic!("{flag} not in {help}"));
        help[..at]
            .lines()
            .rfind(|line| line.ends_with(':') && !line.starts_with(' '))
            .unwrap_or_else(|| panic!("no heading before {flag}: {help}"))
    }

    /// A flag of one check is refused with the other, which would ignore it,
    /// and `--help` lists it under its check's heading.
    #[test]
    fn each_checks_own_flags_are_refused_with_the_other() {
        let scenario = ["gradcheck", "--scenario", "a.toml"];
        let pde = ["gradcheck", "--pde", "heat"];
        let pde_only = [
            ["--experts", "1x2"],
            ["--points", "20"],
            ["--basis", "4"],
            ["--nt", "5"],
            ["--nx", "16"],
            ["--ny", "8"],
        ];
        let scenario_only = [["--set", "grid.nx=64"], ["--batch", "1"]];
        let help = Cli::command().render_help().to_string();
        for (flags, base, heading) in [
            (&pde_only[..], scenario, PDE_ONLY),
            (&scenario_only[..], pde, SCENARIO_ONLY),
        ] {
            for flag in flags {
                let err = Cli::try_parse_from([&base[..], flag].concat()).unwrap_err();
                assert_eq!(
                    err.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{flag:?}: {err}"
                );
                assert_eq!(heading_of(&help, flag[0]), format!("{heading}:"), "{help}");
            }
        }
        for shared in [
            "--device", "--checks", "--step", "--tol", "--seed", "--json",
        ] {
            assert_eq!(heading_of(&help, shared), "Options:", "{help}");
        }
    }
}
