//! Estimates of the host memory a run will need at its peak, from the
//! scenario alone: before any data are generated or any variable is drawn,
//! so that a run that cannot fit is refused in a second rather than killed
//! by the kernel after an hour of data generation (the Navier–Stokes paper
//! scenario peaks near 15 GiB in training at its batch of 4), or after the
//! training, in the evaluation at a finer resolution.
//!
//! [`Footprint`] is the training's peak, [`EvalFootprint`] the
//! evaluation's; a run needs the larger of the two. Each counts the buffers
//! that grow with the problem, from the code that allocates them, and
//! [`PROGRAM_BYTES`] for the program itself. `tessera bench train-step`
//! prints the training's estimate next to the measured peak, `tessera eval`
//! the evaluation's, and tests hold each to its measurement on scenarios of
//! every kind.

mod evaluation;
mod training;

use tessera_constraints::{Pde, residual_term_count};
use tessera_meshes::Grid;
use tessera_scenarios::Scenario;
use tessera_scenarios::config::Dtype;

use crate::SolverError;
use crate::model::setup::pde_of;

pub use evaluation::EvalFootprint;
pub use training::Footprint;

/// The program before it holds any data: code, thread stacks and the
/// allocator's arenas. Measured on x86-64 Linux (glibc, 2 threads) as what
/// the peaks of `tessera bench train-step` on the shipped small scenarios
/// hold beyond the counted buffers: 16–25 MiB.
pub const PROGRAM_BYTES: u64 = 24 << 20;

/// `1.4 GiB` / `850 MiB`: a size as a person reads it.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// What the constraint layer of `scenario`'s PDE holds beside the basis,
/// counted on `grid`: read by both estimates.
struct ConstraintParts {
    /// The PDE's terms (PI-SC holds each on the whole grid).
    terms: usize,
    /// 1 when the PDE maps the solution (one basis-sized field more), else 0.
    mapped: usize,
    /// Values per sample at the experts' sampled points: the residual's term
    /// rows, the Jacobian and the pulled-back rows.
    sampled: usize,
}

impl ConstraintParts {
    fn of(scenario: &Scenario, grid: &Grid) -> Result<Self, SolverError> {
        let pde = pde_of(scenario)?;
        let terms = pde.terms(grid)?.len();
        let d = residual_term_count(&pde, terms)?;
        let n = scenario.model.n_basis;
        let points = scenario.constraint.points * product(&scenario.expert_split());
        Ok(Self {
            terms,
            mapped: usize::from(pde.solution_map(grid)?.is_some()),
            sampled: points * (n * (d + 2) + d),
        })
    }
}

fn product(dims: &[usize]) -> usize {
    dims.iter().product()
}

fn bytes(values: usize, size: u64) -> u64 {
    values as u64 * size
}

/// Bytes of one real of the scenario's backbone.
fn real_size(scenario: &Scenario) -> u64 {
    match scenario.model.dtype {
        Dtype::F64 => 8,
        Dtype::F32 => 4,
    }
}
