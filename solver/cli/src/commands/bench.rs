//! `tessera bench …`: benchmarks, one subcommand each.

use tessera_constraints::LevenbergMarquardt;

use tessera_scenarios::PdeKind;
use tessera_scenarios::custom::CustomPde;

use super::pde_arg;
use crate::constraint_check::{
    BenchConfig, GridSize, bench_constraint, bench_constraint_side_by_side, parse_split,
};
use crate::device::Device;

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Forward and forward+backward medians of the constraint layer on a synthetic
    /// problem (random smooth basis).
    Constraint(ConstraintArgs),
    /// Median time and peak memory of one full training step of a scenario's model.
    TrainStep(super::bench_train_step::TrainStepArgs),
    /// Speed-up of experts (PI-HC-MoE) over a single constraint (PI-HC) at the
    /// same total of sampled points, over a sweep of totals: constraint-layer
    /// forward and forward+backward medians, a JSON report and a PNG curve.
    Scaling(super::bench_scaling::ScalingArgs),
}

impl Bench {
    /// Runs the chosen benchmark.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Constraint(args) => args.run(),
            Self::TrainStep(args) => args.run(),
            Self::Scaling(args) => args.run(),
        }
    }
}

/// Arguments of `tessera bench constraint`.
#[derive(Debug, clap::Args)]
pub struct ConstraintArgs {
    /// The PDE.
    #[arg(long, value_parser = pde_arg::parser())]
    pde: PdeKind,
    /// Time levels [default: 101, or 64 for navier-stokes].
    #[arg(long)]
    nt: Option<usize>,
    /// Points along x [default: 1024, or 64 for navier-stokes].
    #[arg(long)]
    nx: Option<usize>,
    /// Points along y (navier-stokes) [default: 64].
    #[arg(long)]
    ny: Option<usize>,
    /// Number of basis functions N.
    #[arg(long, default_value_t = 16)]
    basis: usize,
    /// Points sampled per expert.
    #[arg(long, default_value_t = 20_000)]
    points: usize,
    /// Tile split, e.g. 1x4 or 1x2x2 [default: 1x4, or 1x2x2 for navier-stokes].
    #[arg(long)]
    experts: Option<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the synthetic problems and the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also time the PDE defined in this TOML file on the same problems, side
    /// by side with the built-in `--pde` (which sets the grid and data).
    #[arg(long)]
    pde_file: Option<std::path::PathBuf>,
    /// Where the `--pde-file` layer's solves (forward and backward) run: cpu,
    /// cuda or cuda:N (a GPU needs a binary built with `--features cuda`).
    /// On a GPU without `--pde-file`, the built-in PDE's own TOML definition
    /// (scenarios/pdes/) is timed there against the built-in on the CPU.
    #[arg(long, default_value = "cpu")]
    device: Device,
}

impl ConstraintArgs {
    /// Runs the benchmark and prints its report.
    pub fn run(self) -> anyhow::Result<()> {
        let two_d = self.pde == PdeKind::NavierStokes;
        let split = match &self.experts {
            Some(text) => parse_split(text)?,
            None if two_d => vec![1, 2, 2],
            None => vec![1, 4],
        };
        let (nt, nx) = if two_d { (64, 64) } else { (101, 1024) };
        let config = BenchConfig {
            pde: self.pde,
            split,
            points_per_expert: self.points,
            n_basis: self.basis,
            grid: GridSize {
                nt: self.nt.unwrap_or(nt),
                nx: self.nx.unwrap_or(nx),
                ny: self.ny.or(two_d.then_some(64)),
            },
            batch: self.batch,
            runs: self.runs,
            lm: LevenbergMarquardt::default(),
            seed: self.seed,
        };
        let pool = thread_pool(self.threads)?;
        let reports = match (&self.pde_file, self.device) {
            (None, Device::Cpu) => vec![pool.install(|| bench_constraint(&config))?],
            // On a GPU without a file: the built-in PDE's own definition.
            (file, device) => {
                let custom = file.as_ref().map(CustomPde::from_file).transpose()?;
                pool.install(|| bench_constraint_side_by_side(&config, custom.as_ref(), device))?
            }
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
            return Ok(());
        }
        for report in &reports {
            println!(
                "{} experts {:?} × {} points, N = {}, grid {:?}, batch {}, {} threads: forward {:.4} s, forward+backward {:.4} s (medians of {}){}; LM iterations {:?}",
                report.pde,
                report.experts,
                report.points,
                report.basis,
                report.grid,
                report.batch,
                report.threads,
                report.fwd_median_s,
                report.fwd_bwd_median_s,
                report.runs,
                report
                    .gpu_peak_mib
                    .map(|m| format!(", peak GPU memory {m:.0} MiB"))
                    .unwrap_or_default(),
                report.iterations
            );
        }
        if let [builtin, others @ ..] = &reports[..] {
            for other in others {
                println!(
                    "{} / built-in: forward {:.3}x, forward+backward {:.3}x",
                    other.pde,
                    other.fwd_median_s / builtin.fwd_median_s,
                    other.fwd_bwd_median_s / builtin.fwd_bwd_median_s
                );
            }
        }
        Ok(())
    }
}

/// The most `--threads` a benchmark takes on a machine of fewer cores: above
/// the hardware threads of today's largest two-socket nodes (2 × 192 cores
/// with SMT, 768), so no real core count is refused, while a typo such as
/// `--threads 1000000` is refused at once instead of rayon quietly capping it
/// at its own limit (65 535) and the process spawning that many threads, each
/// with its own stack, until the OS runs out. A machine with more cores takes
/// up to its core count ([`max_threads`]).
pub(super) const MAX_THREADS: usize = 1024;

/// The largest `--threads`: [`MAX_THREADS`], or the core count where that is
/// larger. Oversubscribing past it would time the scheduler, not the layer.
pub(super) fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(MAX_THREADS, |n| n.get().max(MAX_THREADS))
}

/// `--threads` refused: 0 (which rayon would take as "one per core", so a
/// report would show another count than asked for) or more than
/// [`max_threads`].
#[derive(Debug, thiserror::Error)]
pub(super) enum ThreadsError {
    /// `--threads 0`.
    #[error("invalid --threads = 0: must be at least 1 (leave it out for one per core)")]
    Zero,
    /// More than the bound.
    #[error(
        "invalid --threads = {got}: must be at most {max} (the larger of {MAX_THREADS} and \
         this machine's cores; more threads would time the scheduler, not the layer)"
    )]
    TooMany {
        /// The count asked for.
        got: usize,
        /// [`max_threads`].
        max: usize,
    },
}

/// `threads` if it lies in `1..=max`.
pub(super) fn checked_threads(threads: usize, max: usize) -> Result<usize, ThreadsError> {
    match threads {
        0 => Err(ThreadsError::Zero),
        got if got > max => Err(ThreadsError::TooMany { got, max }),
        ok => Ok(ok),
    }
}

/// The benchmarks' rayon pool: `threads` workers, or one per core.
///
/// Errors: a `threads` outside `1..=`[`max_threads`] ([`ThreadsError`]), or
/// a pool the OS cannot start.
pub(super) fn thread_pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        pool = pool.num_threads(checked_threads(threads, max_threads())?);
    }
    Ok(pool.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds themselves pass, one past each is refused with its reason.
    #[test]
    fn threads_outside_one_to_the_bound_are_refused() {
        assert!(matches!(checked_threads(0, 8), Err(ThreadsError::Zero)));
        assert_eq!(checked_threads(1, 8).unwrap(), 1);
        assert_eq!(checked_threads(8, 8).unwrap(), 8);
        assert!(matches!(
            checked_threads(9, 8),
            Err(ThreadsError::TooMany { got: 9, max: 8 })
        ));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(max_threads(), cores.max(MAX_THREADS));
    }
}
