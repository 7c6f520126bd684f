//! The constraint-layer benchmark: median wall time of the forward pass and of
//! forward + backward on a synthetic problem, with the experts' LM statistics.
//!
//! One untimed warm-up run of each precedes the timed runs (it touches the memory
//! and starts the thread pool); each timed round is one forward run, then one
//! forward + backward run. The backward pass receives a fixed random `ū`, as a
//! loss gradient would be. Parallelism is whatever rayon pool the caller runs
//! this in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tessera_constraints::{LevenbergMarquardt, LmStatus};
use tessera_experts::{ConstraintLayer, Forward, LayerConfig};
use tessera_scenarios::custom::CustomPde;

use tessera_scenarios::{AnyPde, PdeKind};

use crate::constraint_check::{GridSize, SyntheticProblem};
use crate::device::{Device, TermRows};
use crate::error::{ToolError, at_least_one};

/// Settings of [`bench_constraint`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// The PDE.
    pub pde: PdeKind,
    /// Tile split `[s_t, s_x, (s_y)]`.
    pub split: Vec<usize>,
    /// Points sampled per expert.
    pub points_per_expert: usize,
    /// Number of basis functions `N`.
    pub n_basis: usize,
    /// The grid.
    pub grid: GridSize,
    /// Samples per batch (each with its own basis and initial condition).
    pub batch: usize,
    /// Timed runs (at least 1; medians are reported).
    pub runs: usize,
    /// Levenberg–Marquardt settings (default: the reference's).
    pub lm: LevenbergMarquardt,
    /// Seed of the problems and the sampling.
    pub seed: u64,
}

/// What [`bench_constraint`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The PDE's name.
    pub pde: &'static str,
    /// The tile split.
    pub experts: Vec<usize>,
    /// Points per expert.
    pub points: usize,
    /// Number of basis functions.
    pub basis: usize,
    /// The grid's point shape.
    pub grid: Vec<usize>,
    /// Samples per batch.
    pub batch: usize,
    /// Timed runs.
    pub runs: usize,
    /// Threads in the pool the benchmark ran in.
    pub threads: usize,
    /// Median seconds of one forward pass (terms, LM solves, assembly).
    pub fwd_median_s: f64,
    /// Median seconds of one forward plus one backward pass.
    pub fwd_bwd_median_s: f64,
    /// Every timed forward run, seconds.
    pub fwd_runs_s: Vec<f64>,
    /// Every timed forward + backward run, seconds.
    pub fwd_bwd_runs_s: Vec<f64>,
    /// LM iterations per sample and expert, `[batch][K]` (last run).
    pub iterations: Vec<Vec<usize>>,
    /// `‖r_k‖₂` at the solution per sample and expert, `[batch][K]` (last run).
    pub final_residual_norms: Vec<Vec<f64>>,
    /// Whether every solve of the last run converged.
    pub converged: bool,
    /// For a layer whose solves ran on a GPU, the most device memory its
    /// arrays held at once over its runs, warm-up included (the driver's
    /// memory pool high-water mark); `None` otherwise.
    pub gpu_peak_mib: Option<f64>,
    /// For a layer whose solves ran on a GPU, the mean seconds per call of
    /// each part of its solves and backward passes, warm-up included
    /// ([`crate::device::gpu_solve_parts`]); `None` otherwise.
    pub gpu_solve_parts_s: Option<BTreeMap<String, f64>>,
    /// For a layer whose solves ran on a GPU, the mean rounds of the
    /// solver's kernels per solve and per backward pass; `None` otherwise.
    pub gpu_solve_rounds: Option<BTreeMap<String, f64>>,
}

/// Runs the benchmark (see the module docs).
///
/// Errors: zero runs or batch, and anything the problem setup or the constraint
/// layer rejects; a failed expert in the backward pass.
pub fn bench_constraint(config: &BenchConfig) -> Result<BenchReport, ToolError> {
    at_least_one("--runs", config.runs)?;
    let batch = ProblemBatch::new(config)?;
    let mut layer = TimedLayer::new(batch.pde(), config.pde.name(), &batch, config)?;
    alternate(std::slice::from_mut(&mut layer), config.runs)?;
    Ok(layer.report())
}

/// The same benchmark on the same problems, side by side: with the built-in
/// PDE of `config.pde` and with a PDE defined in TOML — `custom` (which must
/// fit the same grid and initial condition), or without it the built-in's own
/// restating definition ([`AnyPde::definition`]) — so that the two residuals'
/// costs compare on identical work. The timed runs alternate between the two
/// (each after its own warm-up), so that a change in the machine's load hits
/// both alike. With `device` a GPU, the TOML layer's solves
/// (Levenberg–Marquardt forward, implicit-function-theorem backward) run
/// there: the reports then compare the CPU's solves with the GPU's on the
/// same problems (with the GPU's assembly of `u` and pull-back to the basis
/// where its term rows are gathered there), and two more reports time the
/// GPU layer again, each on its own after the first two so that its peak
/// device memory is its own: with `u` and the pull-back on the host, then
/// with its problems' term rows built on the host too ([`TermRows`]).
///
/// Errors: as [`bench_constraint`], a built-in configuration no definition
/// restates, and what [`crate::device::attach`] refuses.
pub fn bench_constraint_side_by_side(
    config: &BenchConfig,
    custom: Option<&CustomPde>,
    device: Device,
) -> Result<Vec<BenchReport>, ToolError> {
    at_least_one("--runs", config.runs)?;
    let batch = ProblemBatch::new(config)?;
    let custom = match custom {
        Some(custom) => Arc::new(custom.clone()),
        None => batch.pde().definition()?,
    };
    let name = match device {
        Device::Cpu => "custom (TOML)",
        Device::Cuda(_) => "custom (TOML, GPU solves)",
    };
    let on_device = |name, rows| {
        let pde = Arc::new(AnyPde::Custom(Arc::clone(&custom)));
        TimedLayer::on(device, Some(&custom), pde, name, &batch, config, rows)
    };
    let mut layers = [
        TimedLayer::new(batch.pde(), config.pde.name(), &batch, config)?,
        on_device(name, TermRows::Gathered)?,
    ];
    let mut reports = vec![timed_on_gpu(device, &mut layers, config.runs)?];
    // Its last forward pass keeps a batch on the GPU: gone before the next
    // layer's peak is measured.
    drop(layers);
    if !device.is_cpu() {
        let variants = [
            (
                "custom (TOML, GPU solves, u and pull-back on the host)",
                TermRows::GatheredPassesOnHost,
            ),
            (
                "custom (TOML, GPU solves, term rows from the host)",
                TermRows::FromHost,
            ),
        ];
        for (name, rows) in variants {
            let mut layer = [on_device(name, rows)?];
            reports.push(timed_on_gpu(device, &mut layer, config.runs)?);
        }
    }
    Ok(reports.into_iter().flatten().collect())
}

/// The reports of `layers` timed alternately over `runs` runs, the last one's
/// with the GPU's peak memory and the split of its solves' time when it ran
/// on `device` (the others run on the CPU).
fn timed_on_gpu(
    device: Device,
    layers: &mut [TimedLayer<'_>],
    runs: usize,
) -> Result<Vec<BenchReport>, ToolError> {
    let memory = crate::device::MemoryPeak::start(device)?;
    alternate(layers, runs)?;
    let parts = layers
        .last()
        .and_then(|last| crate::device::gpu_solve_parts(&last.layer));
    let mut reports: Vec<BenchReport> = layers.iter().map(TimedLayer::report).collect();
    if let Some(last) = reports.last_mut() {
        last.gpu_peak_mib = memory.mib()?;
        if let Some(parts) = parts {
            last.gpu_solve_parts_s = Some(parts.seconds);
            last.gpu_solve_rounds = Some(parts.rounds);
        }
    }
    Ok(reports)
}

/// A batch of synthetic problems in the layout the layer takes (the bases
/// concatenated, one initial condition per sample) with a fixed random `ū`:
/// built once and shared by every layer timed on it, so that they all solve
/// identical problems.
pub(super) struct ProblemBatch {
    problems: Vec<SyntheticProblem>,
    basis: Vec<f64>,
    u_bar: Vec<f64>,
}

impl ProblemBatch {
    /// The `config.batch` problems of `config` (seeds `seed`, `seed + 1`, …).
    ///
    /// Errors: a zero batch or number of points, and anything
    /// [`SyntheticProblem::new`] rejects.
    pub(super) fn new(config: &BenchConfig) -> Result<Self, ToolError> {
        at_least_one("--batch", config.batch)?;
        at_least_one("--points", config.points_per_expert)?;
        let problems = (0..config.batch as u64)
            .map(|b| {
                SyntheticProblem::new(config.pde, config.grid, config.n_basis, config.seed + b)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let basis: Vec<f64> = problems
            .iter()
            .flat_map(|p| p.basis.iter().copied())
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let u_bar = (0..basis.len() / config.n_basis)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Ok(Self {
            problems,
            basis,
            u_bar,
        })
    }

    /// The problems' (built-in) PDE.
    pub(super) fn pde(&self) -> Arc<AnyPde> {
        Arc::new(self.problems[0].pde.clone())
    }
}

/// A constraint layer built on a [`ProblemBatch`] and warmed up (one untimed
/// forward and forward + backward), collecting timed runs one at a time so that
/// several layers' runs can alternate (see [`alternate`]).
pub(super) struct TimedLayer<'a> {
    layer: ConstraintLayer<AnyPde>,
    name: &'static str,
    batch: &'a ProblemBatch,
    config: BenchConfig,
    fwd_runs_s: Vec<f64>,
    fwd_bwd_runs_s: Vec<f64>,
    last: Option<Forward>,
}

impl<'a> TimedLayer<'a> {
    /// The layer of `pde` (reported as `name`) with `config`'s split, points,
    /// LM settings and seed, on `batch`, after its warm-up.
    ///
    /// Errors: anything the constraint layer rejects (split, points per tile),
    /// a failed expert in the warm-up's backward pass.
    pub(super) fn new(
        pde: Arc<AnyPde>,
        name: &'static str,
        batch: &'a ProblemBatch,
        config: &BenchConfig,
    ) -> Result<Self, ToolError> {
        Self::on(
            Device::Cpu,
            None,
            pde,
            name,
            batch,
            config,
            TermRows::Gathered,
        )
    }

    /// As [`TimedLayer::new`], with the forward solves on `device` (a GPU
    /// compiles the residual of `definition` and builds the term rows as
    /// `rows` says).
    pub(super) fn on(
        device: Device,
        definition: Option<&CustomPde>,
        pde: Arc<AnyPde>,
        name: &'static str,
        batch: &'a ProblemBatch,
        config: &BenchConfig,
        rows: TermRows,
    ) -> Result<Self, ToolError> {
        let first = &batch.problems[0];
        let layer_config = LayerConfig {
            lm: config
                .lm
                .clone()
                .with_initial(first.initial_guess.clone())?,
            seed: config.seed,
            ..LayerConfig::new(&config.split, config.points_per_expert)
        };
        let timed = Self {
            layer: crate::device::attach(
                device,
                ConstraintLayer::new(pde, first.grid.clone(), layer_config)?,
                definition,
                config.n_basis,
                rows,
            )?,
            name,
            batch,
            config: config.clone(),
            fwd_runs_s: Vec::new(),
            fwd_bwd_runs_s: Vec::new(),
            last: None,
        };
        timed.forward()?;
        timed.forward_backward()?;
        Ok(timed)
    }

    fn forward(&self) -> Result<Forward, ToolError> {
        let ics: Vec<&[f64]> = self
            .batch
            .problems
            .iter()
            .map(|p| p.ic.as_slice())
            .collect();
        Ok(self
            .layer
            .forward(&self.batch.basis, self.config.n_basis, &ics, 0)?)
    }

    fn forward_backward(&self) -> Result<Forward, ToolError> {
        let fwd = self.forward()?;
        self.layer
            .backward(&fwd, &self.batch.basis, &self.batch.u_bar)?;
        Ok(fwd)
    }

    /// One timed forward run, then one timed forward + backward run.
    fn time(&mut self) -> Result<(), ToolError> {
        // The previous run's forward pass (and any batch it keeps on a GPU)
        // goes first, so that no run holds two.
        self.last = None;
        let start = Instant::now();
        self.forward()?;
        self.fwd_runs_s.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let fwd = self.forward_backward()?;
        self.fwd_bwd_runs_s.push(start.elapsed().as_secs_f64());
        self.last = Some(fwd);
        Ok(())
    }

    /// The medians of the timed runs so far, with the LM statistics of the last.
    ///
    /// # Panics
    /// If no timed run was made.
    #[track_caller]
    pub(super) fn report(&self) -> BenchReport {
        let last = self.last.as_ref().expect("at least one timed run");
        let k = self.layer.n_experts();
        BenchReport {
            pde: self.name,
            experts: self.config.split.clone(),
            points: self.config.points_per_expert,
            basis: self.config.n_basis,
            grid: self.config.grid.dims(),
            batch: self.config.batch,
            runs: self.fwd_runs_s.len(),
            threads: rayon::current_num_threads(),
            fwd_median_s: median(&self.fwd_runs_s),
            fwd_bwd_median_s: median(&self.fwd_bwd_runs_s),
            fwd_runs_s: self.fwd_runs_s.clone(),
            fwd_bwd_runs_s: self.fwd_bwd_runs_s.clone(),
            iterations: per_expert(last, k, |s| s.iterations),
            final_residual_norms: per_expert(last, k, |s| s.final_residual),
            converged: last.all_converged(),
            gpu_peak_mib: None,
            gpu_solve_parts_s: None,
            gpu_solve_rounds: None,
        }
    }
}

/// `runs` rounds in which each of `layers` makes one timed run, in turn, so
/// that a change in the machine's load hits every layer alike.
///
/// Errors: a failed expert in a backward pass.
pub(super) fn alternate(layers: &mut [TimedLayer<'_>], runs: usize) -> Result<(), ToolError> {
    for _ in 0..runs {
        for layer in layers.iter_mut() {
            layer.time()?;
        }
    }
    Ok(())
}

/// One statistic of every solve of `forward`, `[batch][K]`.
fn per_expert<T>(forward: &Forward, k: usize, stat: impl Fn(&LmStatus) -> T) -> Vec<Vec<T>> {
    forward
        .statuses
        .chunks(k)
        .map(|sample| sample.iter().map(&stat).collect())
        .collect()
}

/// The median (mean of the two middle values for an even count).
///
/// # Panics
/// If `values` is empty.
#[track_caller]
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        0.5 * (sorted[mid - 1] + sorted[mid])
    }
}
