//! The speed-up of a mixture of experts over a single constraint as the number
//! of sampled points grows (the paper's Fig. 4 / 6): for each total `P`, one
//! expert over the whole domain with `P` points against `K` experts with `P/K`
//! points each, on the same synthetic problem, their timed runs alternating.
//!
//! Both the inference step (the layer's forward pass: the LM solves) and the
//! training step's constraint part (forward + the IFT backward) are timed; the
//! backbone of a full training step is left out, as its cost is the same for
//! both methods and independent of `P` (`tessera bench train-step` times it).

use serde::Serialize;
use tessera_constraints::LevenbergMarquardt;
use tessera_scenarios::PdeKind;

use super::bench::{BenchReport, ProblemBatch, TimedLayer, alternate};
use crate::constraint_check::{BenchConfig, GridSize};
use crate::error::{ToolError, at_least_one};

/// Timed runs per method and total by default: the medians of 9 are steady
/// enough on a shared 2-core machine, and the default sweep still takes about
/// a minute.
pub const DEFAULT_REPEATS: usize = 9;

/// Settings of [`bench_scaling`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingConfig {
    /// The PDE.
    pub pde: PdeKind,
    /// The grid.
    pub grid: GridSize,
    /// Number of basis functions `N`.
    pub n_basis: usize,
    /// The experts' tile split; the single constraint is the split of ones.
    pub moe_split: Vec<usize>,
    /// Sampled-point totals `P`, each a multiple of the number of experts.
    pub totals: Vec<usize>,
    /// Timed runs of each method per total (medians are reported).
    pub repeats: usize,
    /// Seed of the problem and the sampling.
    pub seed: u64,
}

impl ScalingConfig {
    /// The paper's grid, basis size and split for `pde`, with a sweep small
    /// enough that the two PDEs together take about a minute on 2 cores (30–60
    /// s measured on a shared VM): diffusion–sorption on 101 × 1024,
    /// `N = 16`, experts `1x4`, `P` from 100 to 100 000; Navier–Stokes on
    /// 64 × 64 × 64, `N = 16`, experts `1x2x2`, `P` from 100 to 10 000 (the
    /// paper's ranges; each decade and its 3× point). [`DEFAULT_REPEATS`],
    /// seed 0.
    pub fn paper_default(pde: PdeKind) -> Self {
        let (grid, moe_split, top) = match pde.space_dims() {
            2 => (
                GridSize {
                    nt: 64,
                    nx: 64,
                    ny: Some(64),
                },
                vec![1, 2, 2],
                10_000,
            ),
            _ => (
                GridSize {
                    nt: 101,
                    nx: 1024,
                    ny: None,
                },
                vec![1, 4],
                100_000,
            ),
        };
        let totals = [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000]
            .into_iter()
            .filter(|&p| p <= top)
            .collect();
        Self {
            pde,
            grid,
            n_basis: 16,
            moe_split,
            totals,
            repeats: DEFAULT_REPEATS,
            seed: 0,
        }
    }

    /// The number of experts `K`.
    pub fn n_experts(&self) -> usize {
        self.moe_split.iter().product()
    }
}

/// The two methods compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One constraint over the whole domain (PI-HC).
    Single,
    /// `K` experts, one per tile (PI-HC-MoE).
    Moe,
}

/// One method at one total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingEntry {
    /// The total number of sampled points `P` (over all experts).
    pub points_total: usize,
    /// The method.
    pub method: Method,
    /// The timings and LM statistics (`points` is per expert).
    #[serde(flatten)]
    pub bench: BenchReport,
}

/// The speed-ups at one total: single-constraint median over MoE median.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Speedup {
    /// The total number of sampled points `P`.
    pub points_total: usize,
    /// Of the forward pass (inference).
    pub inference: f64,
    /// Of forward + backward (the training step's constraint part).
    pub training: f64,
}

/// What [`bench_scaling`] measured for one PDE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingReport {
    /// The PDE's name.
    pub pde: &'static str,
    /// The grid's point shape.
    pub grid: Vec<usize>,
    /// Number of basis functions.
    pub basis: usize,
    /// The experts' tile split.
    pub moe_experts: Vec<usize>,
    /// Threads in the pool the benchmark ran in.
    pub threads: usize,
    /// Timed runs of each method per total.
    pub repeats: usize,
    /// Single then MoE, for each total in the order given.
    pub entries: Vec<ScalingEntry>,
    /// One per total, in the order given.
    pub speedups: Vec<Speedup>,
}

/// Runs the sweep (see the module docs). Each total's two layers are built and
/// warmed up, then their timed runs alternate; the layers are dropped before
/// the next total, so memory stays that of one total.
///
/// Errors: zero repeats, no totals, a total below the number of experts or not
/// a multiple of it, and anything the problem setup or the constraint layer
/// rejects (e.g. more points than a tile holds).
pub fn bench_scaling(config: &ScalingConfig) -> Result<ScalingReport, ToolError> {
    at_least_one("--repeats", config.repeats)?;
    let k = config.n_experts();
    if config.totals.is_empty() {
        return Err(ToolError::InvalidSetting {
            what: "--points",
            value: String::new(),
            reason: "at least one total",
        });
    }
    for &total in &config.totals {
        if total < k || total % k != 0 {
            return Err(ToolError::InvalidSetting {
                what: "--points",
                value: total.to_string(),
                reason: "each total must be a positive multiple of the number of experts, \
                         so that every expert gets the same share of the same total",
            });
        }
    }
    let bench_config = |split: Vec<usize>, points_per_expert| BenchConfig {
        pde: config.pde,
        split,
        points_per_expert,
        n_basis: config.n_basis,
        grid: config.grid,
        batch: 1,
        runs: config.repeats,
        lm: LevenbergMarquardt::default(),
        seed: config.seed,
    };
    let single_split = vec![1; config.moe_split.len()];
    // The problem depends only on the PDE, grid, basis size and seed: one for all.
    let batch = ProblemBatch::new(&bench_config(single_split.clone(), config.totals[0]))?;
    let mut entries = Vec::with_capacity(2 * config.totals.len());
    let mut speedups = Vec::with_capacity(config.totals.len());
    for &total in &config.totals {
        let single = bench_config(single_split.clone(), total);
        let moe = bench_config(config.moe_split.clone(), total / k);
        let mut layers = [
            TimedLayer::new(batch.pde(), config.pde.name(), &batch, &single)?,
            TimedLayer::new(batch.pde(), config.pde.name(), &batch, &moe)?,
        ];
        alternate(&mut layers, config.repeats)?;
        let [single, moe] = layers.map(|layer| layer.report());
        speedups.push(Speedup {
            points_total: total,
            inference: single.fwd_median_s / moe.fwd_median_s,
            training: single.fwd_bwd_median_s / moe.fwd_bwd_median_s,
        });
        for (method, bench) in [(Method::Single, single), (Method::Moe, moe)] {
            entries.push(ScalingEntry {
                points_total: total,
                method,
                bench,
            });
        }
    }
    Ok(ScalingReport {
        pde: config.pde.name(),
        grid: config.grid.dims(),
        basis: config.n_basis,
        moe_experts: config.moe_split.clone(),
        threads: rayon::current_num_threads(),
        repeats: config.repeats,
        entries,
        speedups,
    })
}
