//! `tessera gradcheck`: the constraint layer's IFT gradient against central finite
//! differences (see [`tessera_solver::constraint_check::gradcheck`](crate::constraint_check::gradcheck)).

use clap::ArgGroup;

use crate::constraint_check::{GradcheckConfig, GridSize, PdeKind, gradcheck, parse_split};

/// Arguments of `tessera gradcheck`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("target").required(true).args(["pde"])))]
pub struct Args {
    /// Check the constraint layer alone for this PDE, on a random smooth basis.
    #[arg(long, value_enum)]
    pde: Option<PdeKind>,
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
    /// Number of random directions checked.
    #[arg(long, default_value_t = 6)]
    checks: usize,
    /// Relative finite-difference step (the larger of the two Richardson steps).
    #[arg(long, default_value_t = 1e-6)]
    step: f64,
    /// Levenberg–Marquardt tolerance (rtol = atol).
    #[arg(long, default_value_t = 1e-14)]
    tol: f64,
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
        let pde = self.pde.expect("clap's group requires --pde");
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
            checks: self.checks,
            step: self.step,
            tolerance: self.tol,
            seed: self.seed,
            ..GradcheckConfig::new(pde, &split)
        };
        let report = gradcheck(&config)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} experts {:?}, {} points/expert, N = {}, grid {:?}: max relative error {:.3e} over {} directions (LM converged: {})",
                report.pde,
                report.experts,
                report.points,
                report.basis,
                report.grid,
                report.max_rel_err,
                report.checks,
                report.converged
            );
        }
        Ok(())
    }
}
