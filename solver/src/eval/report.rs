//! The end of a run: evaluate on the test set, write `summary.json` and the
//! plots into the run directory.

use std::time::Instant;

use serde_json::json;
use tessera_scenarios::Scenario;

use super::{Summary, evaluate};
use crate::SolverError;
use crate::data::Samples;
use crate::plots::{SampleFields, plot_loss, plot_sample};
use crate::train::checkpoint::Totals;
use crate::train::run_dir::write_atomic;
use crate::train::{RunDir, batches, metrics};
use crate::trainable::Trainable;

/// Evaluates `model` on the first `eval.samples` of `test`, writes
/// `summary.json`, heat maps of the first `eval.plots` samples and (when the run
/// has metrics) the loss curve, and returns the summary. `totals` are the
/// training totals recorded in the summary.
pub fn report<M: Trainable + ?Sized>(
    model: &mut M,
    scenario: &Scenario,
    test: &Samples,
    run: &RunDir,
    totals: Totals,
) -> Result<Summary, SolverError> {
    run.create()?;
    let started = Instant::now();
    let count = scenario.eval_samples().min(test.len());
    let seed = batches::eval_seed(scenario.seed);
    let evaluation = evaluate(model, test, count, scenario.training.batch_size, seed)?;
    let summary = Summary {
        scenario: scenario.name.clone(),
        method: method_name(scenario),
        rel_l2_mean: evaluation.mean,
        rel_l2_std: evaluation.std,
        rel_l2: evaluation.rel_l2.clone(),
        grid: scenario.dims(),
        steps: totals.step,
        seconds: totals.seconds,
        failed_solves: totals.failed_solves,
        solves: totals.solves,
        eval_failed_solves: evaluation.failed_solves,
        eval_seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&summary).map_err(|e| SolverError::Plot {
        path: run.summary(),
        reason: e.to_string(),
    })?;
    write_atomic(&run.summary(), text.as_bytes())?;
    for (i, prediction) in evaluation
        .predictions
        .iter()
        .enumerate()
        .take(scenario.eval.plots)
    {
        let title = format!(
            "{} ({}), test sample {i}: rel L2 {:.4}",
            scenario.name, summary.method, evaluation.rel_l2[i]
        );
        let fields = SampleFields {
            dims: test.dims(),
            t_max: scenario.grid.t_max,
            prediction,
            truth: &test.trajectories()[i],
            title: &title,
        };
        plot_sample(&run.plots().join(format!("sample_{i:04}.png")), &fields)?;
    }
    if run.metrics().exists() {
        let records = metrics::read(&run.metrics())?;
        if !records.is_empty() {
            let title = format!("{} ({}): training", scenario.name, summary.method);
            plot_loss(&run.plots().join("loss.png"), &title, &records)?;
        }
    }
    Ok(summary)
}

/// `soft`, `hard` or `moe`, as written in scenario files.
pub fn method_name(scenario: &Scenario) -> String {
    // Serialising a unit enum variant to a JSON string cannot fail.
    serde_json::to_value(scenario.constraint.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The one-line JSON a `--json` run prints last: the summary without the
/// per-sample errors.
pub fn summary_line(summary: &Summary) -> String {
    json!({
        "scenario": summary.scenario,
        "method": summary.method,
        "rel_l2_mean": summary.rel_l2_mean,
        "rel_l2_std": summary.rel_l2_std,
        "steps": summary.steps,
        "seconds": summary.seconds,
        "failed_solves": summary.failed_solves,
        "solves": summary.solves,
        "eval_failed_solves": summary.eval_failed_solves,
        "eval_seconds": summary.eval_seconds,
        "samples": summary.rel_l2.len(),
    })
    .to_string()
}
