//! The constraint-layer benchmark: median wall time of the forward pass and of
//! forward + backward on a synthetic problem, with the experts' LM statistics.
//!
//! One untimed warm-up run of each precedes the timed runs (it touches the memory
//! and starts the thread pool). The backward pass receives a fixed random `ū`, as
//! a loss gradient would be. Parallelism is whatever rayon pool the caller runs
//! this in.

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tessera_constraints::{LevenbergMarquardt, LmStatus, Pde};
use tessera_experts::{ConstraintLayer, Forward, LayerConfig};
use tessera_scenarios::custom::CustomPde;

use tessera_scenarios::{AnyPde, PdeKind};

use crate::constraint_check::{GridSize, SyntheticProblem};
use crate::error::ToolError;

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
}

/// Runs the benchmark (see the module docs).
///
/// Errors: zero runs or batch, and anything the problem setup or the constraint
/// layer rejects; a failed expert in the backward pass.
pub fn bench_constraint(config: &BenchConfig) -> Result<BenchReport, ToolError> {
    let problems = synthetic_problems(config)?;
    let pde = Arc::new(problems[0].pde.clone());
    time_layer(pde, config.pde.name(), &problems, config)
}

/// The same benchmark on the same problems, side by side: with the built-in
/// PDE of `config.pde` and with `custom` (a PDE defined in TOML that must fit
/// the same grid and initial condition), so that the two residuals' costs
/// compare on identical work. The timed runs alternate between the two (each
/// after its own warm-up), so that a change in the machine's load hits both
/// alike.
///
/// Errors: as [`bench_constraint`].
pub fn bench_constraint_side_by_side(
    config: &BenchConfig,
    custom: &CustomPde,
) -> Result<[BenchReport; 2], ToolError> {
    let problems = synthetic_problems(config)?;
    let once = BenchConfig {
        runs: 1,
        ..config.clone()
    };
    let builtin_pde = Arc::new(problems[0].pde.clone());
    let custom_pde = Arc::new(AnyPde::Custom(Arc::new(custom.clone())));
    let mut builtin = time_layer(
        Arc::clone(&builtin_pde),
        config.pde.name(),
        &problems,
        &once,
    )?;
    let mut defined = time_layer(Arc::clone(&custom_pde), "custom (TOML)", &problems, &once)?;
    for _ in 1..config.runs {
        let b = time_layer(
            Arc::clone(&builtin_pde),
            config.pde.name(),
            &problems,
            &once,
        )?;
        let d = time_layer(Arc::clone(&custom_pde), "custom (TOML)", &problems, &once)?;
        merge_run(&mut builtin, b);
        merge_run(&mut defined, d);
    }
    Ok([builtin, defined])
}

/// Appends the timed run of `run` to `report` and updates its medians.
fn merge_run(report: &mut BenchReport, run: BenchReport) {
    report.fwd_runs_s.extend(run.fwd_runs_s);
    report.fwd_bwd_runs_s.extend(run.fwd_bwd_runs_s);
    report.runs = report.fwd_runs_s.len();
    report.fwd_median_s = median(&report.fwd_runs_s);
    report.fwd_bwd_median_s = median(&report.fwd_bwd_runs_s);
}

fn synthetic_problems(config: &BenchConfig) -> Result<Vec<SyntheticProblem>, ToolError> {
    for (what, value) in [("--runs", config.runs), ("--batch", config.batch)] {
        if value == 0 {
            return Err(ToolError::InvalidSetting {
                what,
                value: "0".to_owned(),
                reason: "at least 1",
            });
        }
    }
    (0..config.batch as u64)
        .map(|b| SyntheticProblem::new(config.pde, config.grid, config.n_basis, config.seed + b))
        .collect()
}

/// Times the layer of `pde` on `problems` (warm-ups, then the timed runs).
fn time_layer<P: Pde + 'static>(
    pde: Arc<P>,
    name: &'static str,
    problems: &[SyntheticProblem],
    config: &BenchConfig,
) -> Result<BenchReport, ToolError> {
    let first = &problems[0];
    let layer_config = LayerConfig {
        lm: config
            .lm
            .clone()
            .with_initial(first.initial_guess.clone())?,
        seed: config.seed,
        ..LayerConfig::new(&config.split, config.points_per_expert)
    };
    let layer = ConstraintLayer::new(pde, first.grid.clone(), layer_config)?;
    let basis: Vec<f64> = problems
        .iter()
        .flat_map(|p| p.basis.iter().copied())
        .collect();
    let ics: Vec<&[f64]> = problems.iter().map(|p| p.ic.as_slice()).collect();
    let n = config.n_basis;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let u_bar: Vec<f64> = (0..basis.len() / n)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();

    let forward = || layer.forward(&basis, n, &ics, 0);
    let forward_backward = || -> Result<Forward, ToolError> {
        let fwd = forward()?;
        layer.backward(&fwd, &basis, &u_bar)?;
        Ok(fwd)
    };
    forward()?;
    forward_backward()?;
    let mut fwd_runs_s = Vec::with_capacity(config.runs);
    for _ in 0..config.runs {
        let start = Instant::now();
        forward()?;
        fwd_runs_s.push(start.elapsed().as_secs_f64());
    }
    let mut fwd_bwd_runs_s = Vec::with_capacity(config.runs);
    let mut last = None;
    for _ in 0..config.runs {
        let start = Instant::now();
        let fwd = forward_backward()?;
        fwd_bwd_runs_s.push(start.elapsed().as_secs_f64());
        last = Some(fwd);
    }
    let last = last.expect("at least one timed run");
    let k = layer.n_experts();
    Ok(BenchReport {
        pde: name,
        experts: config.split.clone(),
        points: config.points_per_expert,
        basis: n,
        grid: config.grid.dims(),
        batch: config.batch,
        runs: config.runs,
        threads: rayon::current_num_threads(),
        fwd_median_s: median(&fwd_runs_s),
        fwd_bwd_median_s: median(&fwd_bwd_runs_s),
        fwd_runs_s,
        fwd_bwd_runs_s,
        iterations: per_expert(&last, k, |s| s.iterations),
        final_residual_norms: per_expert(&last, k, |s| s.final_residual),
        converged: last.all_converged(),
    })
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
