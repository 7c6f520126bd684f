//! Evaluation at each of `eval.resolutions` on its own grid: the trained
//! model is rebuilt at the resolution ([`Model::at_resolution`]: the same
//! variables, the constraint layer of the finer grid) and compared with the
//! test data restricted exactly, by stride, to that resolution (the test split
//! is stored at the largest of them). The paper evaluates its Navier–Stokes
//! model this way at 64², 128² and 256² and draws the errors as box plots.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tessera_scenarios::Scenario;

use super::{Evaluation, evaluate_keeping, mean_std};
use crate::SolverError;
use crate::data::Samples;
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
    fn new(resolution: usize, evaluation: &Evaluation) -> Self {
        let (mean, std) = mean_std(&evaluation.rel_l2);
        Self {
            resolution,
            mean,
            std,
            rel_l2: evaluation.rel_l2.clone(),
            failed_solves: evaluation.failed_solves,
        }
    }
}

/// The errors of `model` at every resolution of `scenario.eval.resolutions`,
/// in that order, over the samples of `on_grid`, the evaluation on the model's
/// own grid (the first samples of `stored`, the test split as stored), with
/// its chunks and sampled points (those of [`super::report`]). A resolution
/// equal to the grid's reuses `on_grid` rather than repeating it, since the
/// rebuilt model predicts there bit for bit what `model` does.
///
/// Errors: [`SolverError::Resolution`] for a resolution the model cannot be
/// rebuilt at, or one that does not divide the stored data's; any evaluation
/// error.
pub fn evaluate_resolutions(
    model: &Model,
    scenario: &Scenario,
    stored: &Samples,
    on_grid: &Evaluation,
) -> Result<Vec<ResolutionErrors>, SolverError> {
    let dims = scenario.dims();
    let count = on_grid.rel_l2.len();
    let seed = batches::eval_seed(scenario.seed);
    scenario
        .eval
        .resolutions
        .iter()
        .map(|&resolution| {
            let mut at = dims.clone();
            at[1..].fill(resolution);
            if at == dims {
                return Ok(ResolutionErrors::new(resolution, on_grid));
            }
            // The stored resolution itself is read where it lies (at the
            // paper's 256², 100 trajectories are 3.4 GB).
            let test = if at == stored.dims() {
                Cow::Borrowed(stored)
            } else {
                Cow::Owned(stored.restrict(&at).map_err(|_| SolverError::Resolution {
                    resolution,
                    reason: format!(
                        "does not divide the stored test data's grid {:?}",
                        stored.dims()
                    ),
                })?)
            };
            let mut refined = model.at_resolution(resolution)?;
            // A finer grid predicts in smaller chunks (see
            // `scenario_at_resolution`), and only the errors are kept.
            let chunk = refined.scenario().training.batch_size;
            let evaluation = evaluate_keeping(&mut refined, &test, count, chunk, seed, false)?;
            Ok(ResolutionErrors::new(resolution, &evaluation))
        })
        .collect()
}
