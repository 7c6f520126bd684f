//! Embedding a trained model in a Rust program: load a run directory and
//! predict the constrained field for an initial condition.
//!
//! ```text
//! cargo run --release -- train solver/examples/tiny.toml --out runs/tiny
//! cargo run --release -p tessera-solver --example predict -- runs/tiny 2
//! ```

use std::path::Path;
use std::process::ExitCode;

use tessera_solver::SolverError;
use tessera_solver::embed::{Predictions, TrainedModel};

/// Loads `run_dir`, predicts on `threads` threads for a smooth initial
/// condition, prints each expert's solve and returns the prediction.
pub fn run(run_dir: &Path, threads: usize) -> Result<Predictions, SolverError> {
    let model = TrainedModel::load(run_dir)?;
    let dims = model.dims();
    // One initial condition, [X] (or [X, Y] row-major): a sine bump.
    let nx = dims[1] as f64;
    let ic: Vec<f64> = (0..model.ic_len())
        .map(|i| (std::f64::consts::PI * ((i % dims[1]) as f64 + 0.5) / nx).sin())
        .collect();
    let out = model.predict(&ic, threads)?;
    println!(
        "{}: field {:?}, u(T, mid) = {:.6}",
        model.scenario().name,
        dims,
        out.field(0)[model.field_len() - dims[1] / 2 - 1]
    );
    for (k, s) in out.statuses_of(0).iter().enumerate() {
        println!(
            "  expert {k}: {:?} after {} iterations, residual {:.3e}",
            s.reason, s.iterations, s.final_residual
        );
    }
    Ok(out)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(run_dir) = args.next() else {
        eprintln!("usage: predict RUN_DIR [THREADS]");
        return ExitCode::FAILURE;
    };
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    match run(Path::new(&run_dir), threads) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
