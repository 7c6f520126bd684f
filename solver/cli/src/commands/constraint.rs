//! `tessera constraint …`: tools for the constraint layer on its own.

use std::path::PathBuf;

use tessera_constraints::{DEFAULT_RIDGE, InitialGuess, LevenbergMarquardt, StopReason};
use tessera_experts::ExternalProblem;
use tessera_scenarios::{AnyPde, PdeKind};

use crate::error::at_least_one;

/// The constraint-layer tools.
#[derive(Debug, clap::Subcommand)]
pub enum Constraint {
    /// Solve one externally defined problem (a safetensors file: basis, grid, ic,
    /// sample_idx; metadata pde, pde.constants, pde.fd, split, ic_bc_rows).
    ///
    /// The problem file holds one sample's problem for K experts on a grid of
    /// T × X (× Y) points (experts/src/problem_file.rs):
    ///
    ///   tensor       dtype  shape            meaning
    ///   basis        F64    [T, X, (Y), N]   the basis B, N ≥ 1 functions
    ///   grid         F64    [T, X, (Y), d]   coordinates (t, x, (y)) of each point, d = 2 (or 3);
    ///                                        uniform along each axis
    ///   ic           F64    [X, (Y)]         the initial condition
    ///   sample_idx   I64    [K, P]           expert k's P sampled points: flat indices into
    ///                                        T × X (× Y), inside its tile
    ///
    /// Metadata (strings):
    ///
    ///   pde            diffusion-sorption, navier-stokes, heat or advection
    ///   pde.constants  optional: the scenario's [pde] table as JSON, with its kind, e.g.
    ///                  {"kind":"heat","kappa":0.1}, {"kind":"navier-stokes","nu":0.0001},
    ///                  {"kind":"diffusion-sorption","D":0.0005,"phi":0.29,"rho_s":2880.0,
    ///                  "k_f":0.00035,"n_f":0.874,"boundary":"faces"}; keys left out take
    ///                  their defaults, as does the whole entry
    ///   pde.fd         optional: reference (the default) or second-order
    ///   split          the tile split, e.g. 1x4 or 1x2x2 (K is its product)
    ///   ic_bc_rows     global (every expert gets every initial/boundary row) or local
    ///                  (only those in its tile)
    #[command(verbatim_doc_comment)]
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
    /// Loads, solves and prints; then fails when every expert's solve met
    /// NaN or an infinity, and warns on stderr when some did (see
    /// [`NonFiniteSolves`]). The report is printed first, so the failure
    /// loses nothing of it.
    pub fn run(self) -> anyhow::Result<()> {
        // Refused by its flag before the file is read: the solver's own error
        // names its field and shows the count as a float.
        if let Some(max) = self.max_iterations {
            at_least_one("--max-iterations", max)?;
        }
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
        let failed = NonFiniteSolves::of(&solution.stop_reasons);
        if failed.experts.is_empty() {
            return Ok(());
        }
        if failed.experts.len() < failed.total {
            eprintln!("warning: {failed}");
            return Ok(());
        }
        Err(failed.into())
    }
}

/// The experts whose solves stopped [`StopReason::NonFinite`]: the problem's
/// data, the initial weights or a residual evaluation was NaN or infinite, so
/// their weights are the last finite iterate, not a solution. None of them is
/// an answer to compare, so a file whose every solve ended so fails the
/// command (a script checking the exit status would otherwise take the
/// weights); some of them only warn, as the others' answers stand.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} of {total} expert solves ended NonFinite (experts {experts:?}): the residual \
     or its Jacobian was NaN or infinite (at the initial weights, or on the way), so their \
     weights are the last finite iterate, not a solution; check the scale of the basis and \
     the ic",
    experts.len()
)]
struct NonFiniteSolves {
    /// The experts whose solves ended NonFinite.
    experts: Vec<usize>,
    /// All experts.
    total: usize,
}

impl NonFiniteSolves {
    /// From [`tessera_experts::ExternalSolution::stop_reasons`], which names
    /// each reason as its `Debug` form.
    fn of(stop_reasons: &[String]) -> Self {
        let non_finite = format!("{:?}", StopReason::NonFinite);
        Self {
            experts: (stop_reasons.iter().enumerate())
                .filter(|(_, reason)| **reason == non_finite)
                .map(|(k, _)| k)
                .collect(),
            total: stop_reasons.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NonFinite experts are found by the name the solution gives them,
    /// and the message names how many of how many, and which.
    #[test]
    fn non_finite_solves_are_named_by_expert() {
        let reasons = ["Converged", "NonFinite", "MaxIterations", "NonFinite"];
        let reasons: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
        let failed = NonFiniteSolves::of(&reasons);
        assert_eq!(failed.experts, [1, 3]);
        assert_eq!(failed.total, 4);
        assert!(
            failed
                .to_string()
                .starts_with("2 of 4 expert solves ended NonFinite (experts [1, 3])")
        );
        assert!(NonFiniteSolves::of(&reasons[..1]).experts.is_empty());
    }

    /// `--help` gives the file's format: each tensor's dtype and shape, and
    /// the metadata's values (README, "Commands", points there).
    #[test]
    fn help_states_the_problem_files_format() {
        use clap::CommandFactory;

        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            constraint: Constraint,
        }
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("solve")
            .unwrap()
            .render_long_help()
            .to_string();
        for line in [
            "basis        F64    [T, X, (Y), N]",
            "grid         F64    [T, X, (Y), d]",
            "ic           F64    [X, (Y)]",
            "sample_idx   I64    [K, P]",
            r#"{"kind":"heat","kappa":0.1}"#,
            "pde.fd         optional: reference (the default) or second-order",
            "ic_bc_rows     global",
        ] {
            assert!(help.contains(line), "{line}: {help}");
        }
    }
}
