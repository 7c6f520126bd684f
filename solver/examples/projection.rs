//! The hard-constraint layer as a projection on the caller's own arrays, with
//! no network: take any basis `B` (`[T, X, N]`), and the layer returns the
//! field `u = Σ_k 1_{Ω_k} (B ω_k)` whose PDE residual vanishes at the experts'
//! sampled points (to the solver's tolerance), with the initial and boundary
//! conditions as extra rows.
//!
//! ```text
//! cargo run --release -p tessera-solver --example projection
//! ```

use std::process::ExitCode;

use tessera_scenarios::Scenario;
use tessera_solver::SolverError;
use tessera_solver::embed::{ConstraintProjection, WorkerPool};

/// What the projection did to the PDE residual at the sampled points.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Largest `|F|` at the experts' sampled points of `Σ_n B_n` (`ω = 1`).
    pub before: f64,
    /// Largest `|F|` at expert `k`'s sampled points of `B ω_k`, over `k`.
    pub after: f64,
    /// Largest final least-squares residual `‖r(ω*)‖₂` over the experts (it
    /// includes the PDE rows, so it bounds `after`).
    pub solver_residual: f64,
    /// Whether every expert converged.
    pub converged: bool,
}

/// The heat equation on an 8 × 16 grid, two experts in `x` with 12 points
/// each, and 48 basis functions: more unknowns than each expert's rows (12 PDE
/// rows, 16 initial and 16 boundary rows), so all of them can be met.
const SCENARIO: &str = r#"
name = "projection"
[pde]
kind = "heat"
[grid]
nt = 8
nx = 16
t_max = 1.0
[data]
train_samples = 8
test_samples = 4
[training]
batch_size = 1
validate_samples = 1
[model]
modes = [2, 2]
n_basis = 48
[constraint]
method = "moe"
experts = [1, 2]
points = 12
ridge = 1e-8
rtol = 1e-8
atol = 1e-8
"#;

/// Projects a basis of pseudo-random values for the initial condition
/// `sin(πx)` and reports the residual at the sampled points before and after.
pub fn run() -> Result<Report, SolverError> {
    let scenario = Scenario::from_str(SCENARIO, "<projection example>")?;
    let layer = ConstraintProjection::from_scenario(&scenario)?;
    let (dims, n) = (layer.dims().to_vec(), scenario.model.n_basis);
    let nx = dims[1];
    // Basis [T, X, N] row-major, values in [-1, 1) from a linear congruential
    // generator (any array works: a network's output, modes of a simulation).
    let mut state = 12345u64;
    let basis: Vec<f64> = (0..layer.field_len() * n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect();
    let ic: Vec<f64> = (0..nx)
        .map(|i| (std::f64::consts::PI * (i as f64 + 0.5) / nx as f64).sin())
        .collect();
    let pool = WorkerPool::new(2)?;
    let forward = layer.solve(&basis, n, &ic, &pool)?;
    // Expert k meets the PDE with its own weights: the residual of the whole
    // field `B ω_k` at k's points (the assembled `u` switches weights at tile
    // interfaces, where derivative stencils reach into the next tile).
    let max_at_points = |omegas: &[f64]| -> Result<f64, SolverError> {
        let mut max = 0.0f64;
        for (k, omega) in omegas.chunks_exact(n).enumerate() {
            let field: Vec<f64> = basis
                .chunks_exact(n)
                .map(|b| b.iter().zip(omega).map(|(b, w)| b * w).sum())
                .collect();
            let f = layer.residual(&field, &pool)?;
            for p in layer.points(k)? {
                max = max.max(f[p].abs());
            }
        }
        Ok(max)
    };
    let ones = vec![1.0; layer.n_experts() * n];
    let report = Report {
        before: max_at_points(&ones)?,
        after: max_at_points(&forward.weights)?,
        solver_residual: forward
            .statuses
            .iter()
            .map(|s| s.final_residual)
            .fold(0.0, f64::max),
        converged: forward.all_converged(),
    };
    println!(
        "max |F| at the sampled points: {:.3e} before, {:.3e} after (solver residual {:.3e})",
        report.before, report.after, report.solver_residual
    );
    Ok(report)
}

fn main() -> ExitCode {
    match run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
