//! `tessera constraint …`: tools for the constraint layer on its own.

use std::path::PathBuf;

use tessera_constraints::{DEFAULT_RIDGE, InitialGuess, LevenbergMarquardt};
use tessera_experts::ExternalProblem;
use tessera_scenarios::{AnyPde, PdeKind};

/// The constraint-layer tools.
#[derive(Debug, clap::Subcommand)]
pub enum Constraint {
    /// Solve one externally defined problem (a safetensors file: basis, grid, ic,
    /// sample_idx; metadata pde, pde.constants, pde.fd, split, ic_bc_rows).
    Solve(SolveArgs),
}

impl Constraint {
    /// Runs the chosen tool.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Solve(args) => args.run(),
        }
    }
}

/// Arguments of `tessera constraint solve`.
#[derive(Debug, clap::Args)]
pub struct SolveArgs {
    /// The problem file.
    #[arg(long)]
    problem: PathBuf,
    /// Levenberg–Marquardt relative tolerance [default: the reference's 1e-4].
    #[arg(long)]
    rtol: Option<f64>,
    /// Levenberg–Marquardt absolute tolerance [default: the reference's 1e-4].
    #[arg(long)]
    atol: Option<f64>,
    /// Levenberg–Marquardt iteration limit [default: 100].
    #[arg(long)]
    max_iterations: Option<usize>,
    /// Ridge weight ρ of the rows ρ·ω.
    #[arg(long, default_value_t = DEFAULT_RIDGE)]
    ridge: f64,
    /// Print the solution as JSON.
    #[arg(long)]
    json: bool,
}

impl SolveArgs {
    /// Loads, solves and prints.
    pub fn run(self) -> anyhow::Result<()> {
        let problem = ExternalProblem::load(&self.problem, |metadata| {
            AnyPde::from_metadata(metadata).map(|pde| {
                let periodic = pde.periodic_axes();
                (pde, periodic)
            })
        })?;
        let guess = problem
            .pde()
            .kind()
            .map_or(InitialGuess::Ones, PdeKind::reference_initial_guess);
        let mut lm = LevenbergMarquardt::default().with_initial(guess)?;
        if let Some(rtol) = self.rtol {
            lm = lm.with_rtol(rtol)?;
        }
        if let Some(atol) = self.atol {
            lm = lm.with_atol(atol)?;
        }
        if let Some(max) = self.max_iterations {
            lm = lm.with_max_iterations(max)?;
        }
        let solution = problem.solve(&lm, self.ridge)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&solution)?);
        } else {
            for (k, (w, (it, r))) in solution
                .weights
                .iter()
                .zip(
                    solution
                        .iterations
                        .iter()
                        .zip(&solution.final_residual_norms),
                )
                .enumerate()
            {
                println!(
                    "expert {k}: {} after {it} iterations, ‖r‖ = {r:.6e}, ω = {w:?}",
                    solution.stop_reasons[k]
                );
            }
        }
        Ok(())
    }
}
