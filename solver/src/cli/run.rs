//! `tessera run`: the main job — data, training, evaluation, summary and plots
//! in one run directory.

use std::path::PathBuf;

use crate::eval::{Summary, report, summary_line};
use crate::train::RunDir;

use super::train::{load_scenario, train};

/// Arguments of `tessera run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Override a scenario setting, e.g. `--set constraint.method=soft` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run directory [default: runs/<name>-<method>-<unix time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as one JSON line last on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Trains, evaluates and prints the summary.
    pub fn run(self) -> anyhow::Result<()> {
        let scenario = load_scenario(&self.scenario, &self.overrides)?;
        let run = self
            .out
            .map_or_else(|| RunDir::default_for(&scenario), RunDir::new);
        let (mut model, data, totals) = train(&scenario, &run, false, self.quiet)?;
        let summary = report(&mut model, &scenario, &data.test, &run, totals)?;
        print_summary(&summary, &run, self.json);
        Ok(())
    }
}

/// The summary table on stdout, and with `json` the JSON line after it.
pub(super) fn print_summary(summary: &Summary, run: &RunDir, json: bool) {
    let rows = [
        ("scenario", summary.scenario.clone()),
        ("method", summary.method.clone()),
        ("grid", format!("{:?}", summary.grid)),
        (
            "test rel L2",
            format!(
                "{:.4} ± {:.4} ({} samples)",
                summary.rel_l2_mean,
                summary.rel_l2_std,
                summary.rel_l2.len()
            ),
        ),
        ("steps", summary.steps.to_string()),
        ("training s", format!("{:.1}", summary.seconds)),
        (
            "failed solves",
            format!(
                "{} of {} (training), {} (evaluation)",
                summary.failed_solves, summary.solves, summary.eval_failed_solves
            ),
        ),
        ("run directory", run.root().display().to_string()),
    ];
    for (name, value) in rows {
        println!("{name:>14}  {value}");
    }
    if json {
        println!("{}", summary_line(summary));
    }
}
