//! The plots of a run directory: heat maps of the first `eval.plots` test
//! samples, the box plot of the errors per resolution when the run was
//! evaluated at `eval.resolutions` (`resolutions.png`) and, when the run has
//! metrics, the loss curve.

use tessera_scenarios::Scenario;
use tessera_solver::{Report, RunDir, Samples};

use super::{SampleFields, plot_loss, plot_resolutions, plot_sample};
use crate::error::ToolError;

/// Draws the plots of `report` (the evaluation of `test`) into `run`'s `plots/`.
///
/// Errors: a plot cannot be drawn or written, or the metrics cannot be read.
pub fn plot_run(
    report: &Report,
    scenario: &Scenario,
    test: &Samples,
    run: &RunDir,
) -> Result<(), ToolError> {
    let (summary, evaluation) = (&report.summary, &report.evaluation);
    let truths = test.trajectories()?;
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
            truth: &truths[i],
            title: &title,
        };
        plot_sample(&run.plots().join(format!("sample_{i:04}.png")), &fields)?;
    }
    if !summary.resolutions.is_empty() {
        let title = format!(
            "{} ({}): test error per resolution",
            scenario.name, summary.method
        );
        let path = run.plots().join("resolutions.png");
        plot_resolutions(&path, &title, &summary.resolutions)?;
    }
    if run.metrics().exists() {
        let records = run.read_metrics()?;
        if !records.is_empty() {
            let title = format!("{} ({}): training", scenario.name, summary.method);
            plot_loss(&run.plots().join("loss.png"), &title, &records)?;
        }
    }
    Ok(())
}
