//! The end of a run: evaluate on the test set and write `summary.json` into the
//! run directory.

use std::time::Instant;

use tessera_scenarios::{Dataset, Scenario};

use super::{
    EvalObserver, EvaluatedWith, Evaluation, Persistence, ResolutionErrors, Summary,
    evaluate_observed, evaluate_resolutions, physics_check, window_errors,
};
use crate::SolverError;
use crate::data::Samples;
use crate::model::Model;
use crate::train::checkpoint::Totals;
use crate::train::run_dir::write_atomic;
use crate::train::{RunDir, batches};
use crate::trainable::Trainable;

/// What [`report`] found: the summary it wrote and the evaluation behind it
/// (with the predictions, e.g. for plots).
#[derive(Debug, Clone)]
pub struct Report {
    /// The contents of `summary.json`.
    pub summary: Summary,
    /// Every evaluated sample's error and prediction.
    pub evaluation: Evaluation,
}

/// Where [`report`] writes `summary.json`, and what its evaluation changed
/// from the run's own (recorded in the summary). A run directory alone
/// converts to one with no changes.
#[derive(Debug, Clone)]
pub struct ReportTarget<'a> {
    /// The directory the summary goes into.
    pub dir: &'a RunDir,
    /// Another test file or overridden settings ([`Summary::evaluated_with`]).
    pub evaluated_with: Option<EvaluatedWith>,
}

impl<'a> From<&'a RunDir> for ReportTarget<'a> {
    fn from(dir: &'a RunDir) -> Self {
        Self {
            dir,
            evaluated_with: None,
        }
    }
}

/// Evaluates `model` on the first `eval.samples` of `test`, writes
/// `summary.json` into `to` and returns it with the evaluation. `totals` are
/// the training totals recorded in the summary; `observe` hears where the
/// evaluation stands after each chunk.
pub fn report<'a, M: Trainable + ?Sized>(
    model: &mut M,
    scenario: &Scenario,
    test: &Samples,
    to: impl Into<ReportTarget<'a>>,
    totals: Totals,
    observe: EvalObserver,
) -> Result<Report, SolverError> {
    let to = to.into();
    to.dir.create()?;
    let started = Instant::now();
    let evaluation = evaluate_test(model, scenario, test, observe)?;
    summarise(
        scenario,
        test,
        to,
        totals,
        (evaluation, Vec::new()),
        started,
    )
}

/// [`report`] with the errors at each of `eval.resolutions` as well
/// ([`evaluate_resolutions`]), `stored` being the test split as stored (of
/// which `test` is the restriction to the model's grid). The headline errors
/// stay those on the model's grid.
pub fn report_at_resolutions<'a>(
    model: &mut Model,
    scenario: &Scenario,
    test: &Samples,
    stored: &Dataset,
    to: impl Into<ReportTarget<'a>>,
    totals: Totals,
    observe: EvalObserver,
) -> Result<Report, SolverError> {
    let to = to.into();
    to.dir.create()?;
    let started = Instant::now();
    let evaluation = evaluate_test(model, scenario, test, observe)?;
    let resolutions = evaluate_resolutions(model, scenario, stored, &evaluation, observe)?;
    summarise(
        scenario,
        test,
        to,
        totals,
        (evaluation, resolutions),
        started,
    )
}

/// The first `eval.samples` of `test` predicted in training-batch chunks with
/// the evaluation's sampled points.
fn evaluate_test<M: Trainable + ?Sized>(
    model: &mut M,
    scenario: &Scenario,
    test: &Samples,
    observe: EvalObserver,
) -> Result<Evaluation, SolverError> {
    let count = scenario.eval_samples().min(test.len());
    let seed = batches::eval_seed(scenario.seed);
    let chunk = scenario.training.batch_size;
    evaluate_observed(model, test, count, chunk, seed, observe)
}

/// The summary of `evaluation` (with the window errors of an extrapolation
/// run), written to the run's `summary.json`.
fn summarise(
    scenario: &Scenario,
    test: &Samples,
    to: ReportTarget<'_>,
    totals: Totals,
    (evaluation, resolutions): (Evaluation, Vec<ResolutionErrors>),
    started: Instant,
) -> Result<Report, SolverError> {
    let frame: usize = test.dims()[1..].iter().product();
    let windows = scenario
        .training
        .horizon
        .map(|horizon| {
            window_errors(
                &evaluation.predictions,
                test.trajectories()?,
                frame,
                scenario.training_levels(),
                horizon,
            )
        })
        .transpose()?;
    let physics = physics_check(scenario, test, &evaluation.predictions)?;
    let evaluated = &test.trajectories()?[..evaluation.rel_l2.len()];
    let persistence = Persistence::of(evaluated, frame)?;
    let summary = Summary {
        scenario: scenario.name.clone(),
        method: method_name(scenario),
        rel_l2_mean: evaluation.mean,
        rel_l2_std: evaluation.std,
        rel_l2: evaluation.rel_l2.clone(),
        initial_rms: (0..evaluation.rel_l2.len())
            .map(|i| test.initial_rms(i))
            .collect(),
        grid: scenario.dims(),
        steps: totals.step,
        seconds: totals.seconds,
        failed_solves: totals.failed_solves,
        solves: totals.solves,
        eval_failed_solves: evaluation.failed_solves,
        eval_seconds: started.elapsed().as_secs_f64(),
        windows,
        resolutions,
        physics: Some(physics),
        persistence: Some(persistence),
        evaluated_with: to.evaluated_with,
    };
    let text = serde_json::to_string_pretty(&summary).map_err(|source| SolverError::Json {
        path: to.dir.summary(),
        line: None,
        source,
    })?;
    write_atomic(&to.dir.summary(), text.as_bytes())?;
    Ok(Report {
        summary,
        evaluation,
    })
}

/// `soft`, `hard` or `moe`, as written in scenario files.
pub fn method_name(scenario: &Scenario) -> String {
    // Serialising a unit enum variant to a JSON string cannot fail.
    serde_json::to_value(scenario.constraint.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
