//! Evaluation at each of `eval.resolutions` on its own grid: the trained
//! model is rebuilt at the resolution ([`Model::at_resolution`]: the same
//! variables, the constraint layer of the finer grid) and compared with the
//! test data restricted exactly, by stride, to that resolution (the test split
//! is stored at the largest of them). The paper evaluates its Navier–Stokes
//! model this way at 64², 128² and 256² and draws the errors as box plots.

use serde::{Deserialize, Serialize};
use tessera_scenarios::{Dataset, Scenario};

use super::{EvalObserver, EvalProgress, Evaluation, evaluate, mean_std};
use crate::SolverError;
use crate::data::{Restriction, Samples};
use crate::memory::release_free_memory;
use crate::model::Model;
use crate::train::batches;

/// The test errors at one spatial resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolutionErrors {
    /// Points per spatial axis.
    pub resolution: usize,
    /// Mean and population standard deviation of the relative L2 errors.
    pub mean: f64,
    pub std: f64,
    /// Relative L2 error per sample.
    pub rel_l2: Vec<f64>,
    /// Prediction solves whose status is not `converged`.
    pub failed_solves: usize,
}

impl ResolutionErrors {
    fn new(resolution: usize, rel_l2: Vec<f64>, failed_solves: usize) -> Self {
        let (mean, std) = mean_std(&rel_l2);
        Self {
            resolution,
            mean,
            std,
            rel_l2,
            failed_solves,
        }
    }
}

/// The errors of `model` at every resolution of `scenario.eval.resolutions`,
/// in that order, over the samples of `on_grid`, the evaluation on the model's
/// own grid (the first samples of `stored`, the test split as stored), with
/// its chunks and sampled points (those of [`super::report`]), telling
/// `observe` where it stands after each chunk of a finer grid. A resolution
/// equal to the grid's reuses `on_grid` rather than repeating it, since the
/// rebuilt model predicts there bit for bit what `model` does.
///
/// Each chunk of `stored` is restricted to the resolution and converted to
/// f64 only while it is evaluated, and only the errors are kept: at the
/// paper's Navier–Stokes scale the split is 1.7 GB as stored, and would be
/// 3.4 GB in f64 at 256² and 0.85 GB more at 128².
///
/// Errors: [`SolverError::Resolution`] for a resolution the model cannot be
/// rebuilt at, or one that does not divide the stored data's; any evaluation
/// error.
pub fn evaluate_resolutions(
    model: &Model,
    scenario: &Scenario,
    stored: &Dataset,
    on_grid: &Evaluation,
    observe: EvalObserver,
) -> Result<Vec<ResolutionErrors>, SolverError> {
    let dims = scenario.dims();
    let count = on_grid.rel_l2.len();
    let seed = batches::eval_seed(scenario.seed);
    // The model's buffers, and each finer model's once its resolution is
    // done, go back before the next asks for its own (they grow fourfold
    // per doubling).
    model.release_kept_buffers();
    release_free_memory();
    scenario
        .eval
        .resolutions
        .iter()
        .map(|&resolution| {
            let mut at = dims.clone();
            at[1..].fill(resolution);
            if at == dims {
                let errors = on_grid.rel_l2.clone();
                return Ok(ResolutionErrors::new(
                    resolution,
                    errors,
                    on_grid.failed_solves,
                ));
            }
            let mut refined = model.at_resolution(resolution)?;
            let grid = refined.scenario().grid()?;
            Restriction::of_dataset(stored, &grid).map_err(|e| match e {
                SolverError::ShapeMismatch { .. } => SolverError::Resolution {
                    resolution,
                    reason: format!(
                        "does not divide the stored test data's grid {:?}",
                        stored.dims()
                    ),
                },
                other => other,
            })?;
            // A finer grid predicts in smaller chunks (see
            // `scenario_at_resolution`).
            let chunk = refined.scenario().training.batch_size;
            let mut rel_l2 = Vec::with_capacity(count);
            let mut failed_solves = 0;
            for start in (0..count).step_by(chunk) {
                let end = count.min(start + chunk);
                let part = Samples::from_dataset_range(stored, &grid, start..end)?;
                let evaluation = evaluate(&mut refined, &part, end - start, chunk, seed)?;
                rel_l2.extend(evaluation.rel_l2);
                failed_solves += evaluation.failed_solves;
                observe(&EvalProgress::new(&at[1..], &rel_l2, count, failed_solves));
                // The layer's pool would hold the chunk's mapped basis (2.1 GB
                // per sample at 256²) through the next chunk's backbone pass,
                // whose own fields it does not serve.
                refined.release_kept_buffers();
                release_free_memory();
            }
            drop(refined);
            release_free_memory();
            Ok(ResolutionErrors::new(resolution, rel_l2, failed_solves))
        })
        .collect()
}
