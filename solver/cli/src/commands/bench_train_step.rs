//! `tessera bench train-step`: the time of one full training step (backbone
//! forward, constraint solves, loss, backward through the IFT op, clipping,
//! Adam update) on a scenario's model, the median of several steps after a
//! warm-up, with the process's peak memory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use tessera_scenarios::dataset::Split;
use tessera_solver::{
    Adam, AdamConfig, Batch, Model, Samples, method_name, named_vars, step_draw, update,
};

use super::train::load_scenario;

/// Arguments of `tessera bench train-step`.
#[derive(Debug, clap::Args)]
pub struct TrainStepArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Override a scenario setting (repeatable), e.g. `--set constraint.method=soft`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Samples per step.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed steps (after one warm-up step); at least 5.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What the benchmark reports.
#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    method: String,
    batch: usize,
    runs: usize,
    threads: usize,
    step_median_s: f64,
    step_times_s: Vec<f64>,
    peak_rss_mib: f64,
    lm_iterations_mean: f64,
    failed_solves: usize,
}

impl TrainStepArgs {
    /// Runs the warm-up and the timed steps and prints the report.
    pub fn run(self) -> anyhow::Result<()> {
        if self.runs < 5 {
            bail!("--runs must be at least 5 (got {})", self.runs);
        }
        let mut scenario = load_scenario(&self.scenario, &self.overrides)?;
        // Only the batch's initial conditions are needed: generate that many.
        // Both sizes change together (one at a time would fail validation).
        scenario.data.train_samples = self.batch;
        scenario.training.batch_size = self.batch;
        scenario.validate()?;
        let train = Samples::load(&scenario, Split::Train, true)
            .context("generating the batch's initial conditions")?;
        let mut model = Model::new(&scenario)?;
        let vars = named_vars(&model)?;
        let mut adam = Adam::new(AdamConfig::default());
        let t = &scenario.training;
        let mut times = Vec::with_capacity(self.runs);
        let (mut iterations, mut failed) = (0.0, 0);
        for step in 0..=self.runs {
            let draw = step_draw(scenario.seed, step, train.len(), self.batch);
            let batch = Batch {
                ics: train.initial_conditions(&draw.indices),
                targets: (t.loss.data > 0.0).then(|| train.trajectories().to_vec()),
                seed: draw.seed,
            };
            let started = Instant::now();
            let record = update(&mut model, &batch, &vars, &mut adam, t.lr, t.clip_norm)?;
            let elapsed = started.elapsed().as_secs_f64();
            if step > 0 {
                times.push(elapsed);
                iterations += record.lm_iterations_mean;
                failed += record.failed_solves;
            }
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let report = Report {
            scenario: scenario.name.clone(),
            method: method_name(&scenario),
            batch: self.batch,
            runs: self.runs,
            threads: rayon::current_num_threads(),
            step_median_s: sorted[sorted.len() / 2],
            step_times_s: times,
            peak_rss_mib: peak_rss_mib()?,
            lm_iterations_mean: iterations / self.runs as f64,
            failed_solves: failed,
        };
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} ({}), batch {}, {} threads: step median {:.4} s over {} steps, peak RSS {:.0} MiB, LM iterations {:.2}, failed solves {}",
                report.scenario,
                report.method,
                report.batch,
                report.threads,
                report.step_median_s,
                report.runs,
                report.peak_rss_mib,
                report.lm_iterations_mean,
                report.failed_solves
            );
        }
        Ok(())
    }
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`), in MiB.
fn peak_rss_mib() -> anyhow::Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("parsing VmHWM")?;
    Ok(kib / 1024.0)
}
