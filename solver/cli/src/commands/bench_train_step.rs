//! `tessera bench train-step`: the time of one full training step (backbone
//! forward, constraint solves, loss, backward through the IFT op, clipping,
//! Adam update) on a scenario's model, the median of several steps after a
//! warm-up, with the process's peak memory (and on a GPU its peak device
//! memory) and where the step's time went
//! (the median of each phase: backbone forward and backward, solves, their
//! backward pass, losses, optimiser, and the rest).
//!
//! Under a launcher (`mpirun -np K`, built with `--features mpi`) the step is
//! the data-parallel one of `tessera train`: each rank runs its share of the
//! global batch and the gradients are all-reduced. The report then adds the
//! throughput (samples per second of the global batch) and what the step
//! spent in communication on rank 0 (wall time inside collectives, which
//! includes waiting for the slower rank, and bytes sent), so runs at
//! different `K` compare side by side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use tessera_experts::comm::Metered;
use tessera_scenarios::dataset::Split;
use tessera_solver::{
    Adam, AdamConfig, Batch, DataShard, Footprint, Layout, Model, Phase, PhaseClock, PhaseTimes,
    Samples, Trainable, World, method_name, named_vars, step_draw, update_shard, with_world,
};

use super::train::load_scenario;
use crate::device::{
    DeviceArg, GpuSolveParts, MemoryPeak, gpu_backbone_parts, gpu_solve_parts, placement,
};
use crate::error::at_least_one;
use crate::memory::peak_resident;

/// Arguments of `tessera bench train-step`.
#[derive(Debug, clap::Args)]
pub struct TrainStepArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Override a scenario setting (repeatable), e.g. `--set constraint.method=soft`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Samples per step (the global batch, split over the ranks under a launcher).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed steps (after one warm-up step); at least 5.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[command(flatten)]
    device: DeviceArg,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What the benchmark reports.
#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    method: String,
    /// Where the model ran (`cpu`, `cuda`, `cuda:N`).
    device: String,
    /// Where the experts' solves ran: `cpu`, `gpu`, or `none` (soft).
    solves: &'static str,
    /// Where the PDE loss and its gradient ran: `cpu` or `gpu`.
    pde_loss: &'static str,
    batch: usize,
    runs: usize,
    /// Trainable scalars: the gradient all-reduce moves `2 (K−1)/K` of them,
    /// as f64, per rank and step.
    parameters: usize,
    /// Processes (MPI ranks) sharing the batch.
    ranks: usize,
    /// What the ranks' collectives ran on: `local` (one rank), `mpi`, or
    /// `nccl` (a `--features nccl` build on GPUs).
    collectives: &'static str,
    /// Rayon threads per rank.
    threads: usize,
    step_median_s: f64,
    step_times_s: Vec<f64>,
    /// Rank 0's median wall time per phase of the step
    /// ([`tessera_solver::Phase`]), and `other`: the median of what the step
    /// spent outside them (tensor conversions, the graph's traversal,
    /// gathering fields).
    phases_median_s: BTreeMap<&'static str, f64>,
    /// The global batch over the median step.
    samples_per_s: f64,
    /// Rank 0's median time inside collectives per step.
    comm_median_s: f64,
    /// Bytes rank 0 sent per step (the same every step).
    comm_bytes_per_step: u64,
    /// Rank 0's peak resident set.
    peak_rss_mib: f64,
    /// The estimate of that peak from the scenario alone
    /// ([`tessera_solver::Footprint`], with no data held), which `train`
    /// and `run` check against the machine's memory before they start.
    estimated_mib: f64,
    /// Rank 0's peak GPU memory over the timed steps: the most its arrays
    /// held at once (the driver's memory pool high-water mark); `null` on
    /// the CPU.
    gpu_peak_mib: Option<f64>,
    /// With the experts' solves on a GPU, rank 0's mean seconds per call of
    /// each part of the solves and their backward passes over the timed
    /// steps (packing, copies, kernels: [`crate::device::gpu_solve_parts`]);
    /// `null` otherwise.
    gpu_solve_parts_s: Option<BTreeMap<String, f64>>,
    /// With the backbone on a GPU, rank 0's mean seconds per call of each
    /// part of its forward and backward passes and of the Adam updates there
    /// over the timed steps (the parameters' check, copies, kernels, setting
    /// the host's variables: [`crate::device::gpu_backbone_parts`]); `null`
    /// otherwise.
    gpu_backbone_parts_s: Option<BTreeMap<String, f64>>,
    /// With the experts' solves on a GPU, rank 0's mean rounds of the
    /// solver's kernels per solve and per backward pass; `null` otherwise.
    gpu_solve_rounds: Option<BTreeMap<String, f64>>,
    lm_iterations_mean: f64,
    failed_solves: usize,
}

/// The median of `values` (not empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

impl TrainStepArgs {
    /// Runs the warm-up and the timed steps and prints the report (on rank 0).
    pub fn run(self) -> anyhow::Result<()> {
        with_world(|world| self.run_in(world))
    }

    fn run_in(self, world: &World) -> anyhow::Result<()> {
        if self.runs < 5 {
            bail!("--runs must be at least 5 (got {})", self.runs);
        }
        // Checked here: the batch sets two scenario settings below, whose
        // validation would name those instead of the flag.
        at_least_one("--batch", self.batch)?;
        let mut scenario = load_scenario(&self.scenario, &self.overrides)?;
        self.device.apply(&mut scenario);
        // Only the batch's initial conditions are needed: generate that many.
        // Both sizes change together (one at a time would fail validation).
        scenario.data.train_samples = self.batch;
        scenario.training.batch_size = self.batch;
        scenario.validate()?;
        let layout = Layout::resolve(&scenario, world.size())?;
        world.use_device(scenario.device)?;
        // The model first: a device that cannot be used fails before any data.
        let footprint = Footprint::of_training(&scenario, self.batch / layout.data)?;
        let mut model = Model::new(&scenario)?;
        // Rank 0 generates (and caches) the batch first; the others then read
        // the cache instead of racing to write it.
        let load = || {
            Samples::load(&scenario, Split::Train, true)
                .context("generating the batch's initial conditions")
        };
        let train = if world.is_root() {
            let train = load()?;
            world.comm().barrier()?;
            train
        } else {
            world.comm().barrier()?;
            load()?
        };
        let metered = Metered::new(world.comm());
        let shard = DataShard::new(&metered, layout);
        let vars = named_vars(&model)?;
        let mut adam = Adam::new(AdamConfig::default());
        let t = &scenario.training;
        let (mut times, mut comm) = (Vec::new(), Vec::new());
        let mut phases: Vec<PhaseTimes> = Vec::new();
        let (mut iterations, mut failed, mut bytes) = (0.0, 0, 0);
        let mut gpu_memory = None;
        for step in 0..=self.runs {
            if step == 1 {
                gpu_memory = Some(MemoryPeak::start(scenario.device)?);
                // The warm-up's solves and passes are not reported.
                let _ = solve_parts(&model);
                let _ = gpu_backbone_parts(&model);
            }
            let draw = step_draw(scenario.seed, step, train.len(), self.batch);
            let batch = Batch {
                ics: train.initial_conditions(&draw.indices),
                targets: if t.loss.data > 0.0 {
                    Some(train.trajectories()?.to_vec())
                } else {
                    None
                },
                seed: draw.seed,
            };
            let started = Instant::now();
            let record = update_shard(
                &mut model,
                &batch,
                &vars,
                &mut adam,
                t.lr,
                t.clip_norm,
                &shard,
            )?;
            let elapsed = started.elapsed().as_secs_f64();
            let traffic = metered.take();
            let phase_times = model.phases().map(PhaseClock::take).unwrap_or_default();
            if step > 0 {
                times.push(elapsed);
                phases.push(phase_times);
                comm.push(traffic.seconds);
                bytes = traffic.bytes;
                iterations += record.lm_iterations_mean;
                failed += record.failed_solves;
            }
        }
        if !world.is_root() {
            return Ok(());
        }
        let step_median_s = median(&times);
        let mut phases_median_s: BTreeMap<&'static str, f64> = Phase::ALL
            .iter()
            .map(|&p| {
                (
                    p.name(),
                    median(&phases.iter().map(|t| t.get(p)).collect::<Vec<_>>()),
                )
            })
            .collect();
        let other: Vec<f64> = times
            .iter()
            .zip(&phases)
            .map(|(s, p)| s - p.total())
            .collect();
        phases_median_s.insert("other", median(&other));
        let (solves, pde_loss) = placement(&model);
        let parts = solve_parts(&model);
        let report = Report {
            scenario: scenario.name.clone(),
            method: method_name(&scenario),
            device: scenario.device.to_string(),
            solves,
            pde_loss,
            batch: self.batch,
            runs: self.runs,
            parameters: vars.values().map(|v| v.elem_count()).sum(),
            ranks: world.size(),
            collectives: world.transport(),
            threads: rayon::current_num_threads(),
            step_median_s,
            step_times_s: times,
            phases_median_s,
            samples_per_s: self.batch as f64 / step_median_s,
            comm_median_s: median(&comm),
            comm_bytes_per_step: bytes,
            peak_rss_mib: peak_resident()? as f64 / f64::from(1 << 20),
            estimated_mib: footprint.without_data().total() as f64 / f64::from(1 << 20),
            gpu_peak_mib: match &gpu_memory {
                Some(memory) => memory.mib()?,
                None => None,
            },
            gpu_solve_parts_s: parts.as_ref().map(|p| p.seconds.clone()),
            gpu_backbone_parts_s: gpu_backbone_parts(&model),
            gpu_solve_rounds: parts.map(|p| p.rounds),
            lm_iterations_mean: iterations / self.runs as f64,
            failed_solves: failed,
        };
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} ({}, {}, solves on {}, PDE loss on {}), batch {} over {} rank(s) ({} collectives) × {} threads: step median {:.4} s over {} steps ({:.3} samples/s; communication {:.4} s, {} bytes sent by rank 0), peak RSS {:.0} MiB (estimated {:.0} MiB){}, LM iterations {:.2}, failed solves {}",
                report.scenario,
                report.method,
                report.device,
                report.solves,
                report.pde_loss,
                report.batch,
                report.ranks,
                report.collectives,
                report.threads,
                report.step_median_s,
                report.runs,
                report.samples_per_s,
                report.comm_median_s,
                report.comm_bytes_per_step,
                report.peak_rss_mib,
                report.estimated_mib,
                report
                    .gpu_peak_mib
                    .map(|m| format!(", peak GPU memory {m:.0} MiB"))
                    .unwrap_or_default(),
                report.lm_iterations_mean,
                report.failed_solves
            );
            let phases: Vec<String> = Phase::ALL
                .iter()
                .map(|p| p.name())
                .chain(["other"])
                .map(|name| format!("{name} {:.4} s", report.phases_median_s[name]))
                .collect();
            println!("phases (medians): {}", phases.join(", "));
        }
        Ok(())
    }
}

/// The parts of the GPU solves of `model`'s constraint layer since the last
/// call, if it has one and it solves on a GPU.
fn solve_parts(model: &Model) -> Option<GpuSolveParts> {
    gpu_solve_parts(model.constraint()?.layer())
}
