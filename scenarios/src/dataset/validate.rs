//! Checking a dataset against our reference solver: re-solve every sample from
//! its initial condition on the file's grid and report the relative L2 error of
//! the file's trajectory against ours.

use rayon::prelude::*;
use serde::Serialize;

use super::Dataset;
use super::generate::{mol_domain, mol_options, progress};
use crate::config::{PdeConfig, Scenario};
use crate::mol::Discretisation;
use crate::{ScenarioError, diffusion_sorption, navier_stokes};

/// Per-sample and mean relative L2 errors `‖data − ours‖ / ‖ours‖` over whole
/// trajectories.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverCheck {
    /// One error per sample, in file order.
    pub rel_l2: Vec<f64>,
    /// Their mean.
    pub rel_l2_mean: f64,
    /// The resolution our solver ran at (cells, or points per axis).
    pub solver_resolution: usize,
}

/// Maps one sample's initial condition (on the file's grid) to our trajectory
/// on the same grid; one closure per PDE kind, so the parallel loop below is
/// shared.
type SampleSolver<'a> = Box<dyn Fn(&[f64]) -> Result<Vec<f64>, ScenarioError> + Sync + 'a>;

/// Re-solves every sample of `dataset` with the scenario's reference solver
/// and PDE constants. Diffusion–sorption runs at `data.reference.nx` cells when
/// that is a multiple of the file's `nx` (else at the file's `nx`), with the
/// scenario's `rtol`; Navier–Stokes at `data.reference.resolution` when the
/// file's sizes divide it (else at the file's own square resolution). A PDE
/// defined in TOML is re-solved by the method of lines on the file's own grid
/// (no refinement: the file holds the initial condition only there), so the
/// error includes the file's spatial discretisation error.
pub fn validate_solver(
    scenario: &Scenario,
    dataset: &Dataset,
    quiet: bool,
) -> Result<SolverCheck, ScenarioError> {
    let dims = dataset.dims();
    let bar = progress(dataset.len(), quiet, "re-solving");
    // A custom PDE and its discretisation outlive the solver closure that
    // borrows them.
    let custom;
    let mol;
    let discretisation;
    let (solve, resolution): (SampleSolver<'_>, usize) = match (&scenario.pde, dims.as_slice()) {
        (PdeConfig::DiffusionSorption(params), &[_, nx]) => {
            let reference = scenario.reference_nx();
            let cells = if reference.is_multiple_of(nx) {
                reference
            } else {
                nx
            };
            let solver = diffusion_sorption::ReferenceSolver::new(
                params,
                cells,
                scenario.data.reference.rtol(),
            )?;
            let t = dataset.t().to_vec();
            (Box::new(move |ic| solver.solve_on_grid(ic, &t)), cells)
        }
        (PdeConfig::NavierStokes(params), &[_, nx, ny]) => {
            let reference = scenario.reference_resolution();
            let n = if reference.is_multiple_of(nx) && reference.is_multiple_of(ny) {
                reference
            } else if nx == ny {
                nx
            } else {
                return Err(ScenarioError::ShapeMismatch {
                        what: "Navier-Stokes data grid (needs a square grid or sizes dividing data.reference.resolution)".into(),
                        expected: vec![reference, reference],
                        got: vec![nx, ny],
                    });
            };
            let solver =
                navier_stokes::ReferenceSolver::new(params.nu, n, scenario.data.reference.dt())?;
            let t = dataset.t().to_vec();
            (Box::new(move |ic| solver.solve_on_grid(ic, nx, ny, &t)), n)
        }
        (PdeConfig::Custom(params), [_, points @ ..]) if points.len() == params.domain.len() => {
            custom = params.pde(&scenario.name)?;
            mol = custom
                .mol()
                .map_err(|e| ScenarioError::CustomPde(Box::new(e)))?;
            let domain = mol_domain(scenario, params, points, 1)?;
            discretisation = Discretisation::new(&mol, &domain)?;
            let (t, options) = (dataset.t().to_vec(), mol_options(scenario));
            let solver = &discretisation;
            let solve = move |ic: &[f64]| {
                let solution = solver.solve(ic, &t, &options)?;
                Ok(solution.frames)
            };
            (Box::new(solve), points[0])
        }
        (
            PdeConfig::DiffusionSorption(_) | PdeConfig::NavierStokes(_) | PdeConfig::Custom(_),
            _,
        ) => {
            let expected = if scenario.pde.space_dims() == 1 {
                vec![0, 0]
            } else {
                vec![0, 0, 0]
            };
            return Err(ScenarioError::ShapeMismatch {
                what: format!("data grid rank for {} (t, x, (y))", scenario.pde.kind()),
                expected,
                got: dims,
            });
        }
        (other, _) => {
            return Err(ScenarioError::Unsupported {
                what: "a reference solver",
                pde: other.kind().to_owned(),
            });
        }
    };
    let rel_l2 = (0..dataset.len())
        .into_par_iter()
        .map(|i| {
            let ic: Vec<f64> = dataset
                .initial_condition(i)
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let ours = solve(&ic)?;
            bar.inc(1);
            Ok(relative_l2(dataset.trajectory(i), &ours))
        })
        .collect::<Result<Vec<f64>, ScenarioError>>()?;
    bar.finish_and_clear();
    let rel_l2_mean = rel_l2.iter().sum::<f64>() / rel_l2.len().max(1) as f64;
    Ok(SolverCheck {
        rel_l2,
        rel_l2_mean,
        solver_resolution: resolution,
    })
}

/// `‖data − reference‖₂ / ‖reference‖₂` (0 when both vanish).
fn relative_l2(data: &[f32], reference: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (&d, &r) in data.iter().zip(reference) {
        num += (f64::from(d) - r).powi(2);
        den += r * r;
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}
