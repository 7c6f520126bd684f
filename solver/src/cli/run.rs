//! `tessera run`: the main job — data, training, evaluation, summary and plots
//! in one run directory.

use std::path::PathBuf;

use crate::eval::{Summary, report, summary_line};
use crate::parallel::{World, with_world};
use crate::train::{Claim, RunDir};

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
    /// Start afresh in a non-empty run directory, or take over a stale lock.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Trains, evaluates and prints the summary (over all ranks under a
    /// launcher; rank 0 evaluates and writes).
    pub fn run(self) -> anyhow::Result<()> {
        with_world(|world| self.run_in(world))
    }

    fn run_in(self, world: &World) -> anyhow::Result<()> {
        let scenario = load_scenario(&self.scenario, &self.overrides)?;
        let run = self
            .out
            .map_or_else(|| RunDir::default_for(&scenario), RunDir::new);
        let claim = Claim {
            resume: false,
            force: self.force,
        };
        let _lock = world.is_root().then(|| run.claim(claim)).transpose()?;
        let (mut model, data, totals) = train(&scenario, &run, false, self.quiet, world)?;
        if !world.is_root() {
            return Ok(());
        }
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
