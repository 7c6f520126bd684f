//! `tessera bench scaling`: the speed-up of a mixture of experts over a single
//! constraint as the number of sampled points grows (the paper's Fig. 4 / 6),
//! as a table, a JSON file and a PNG curve.

use std::path::PathBuf;

use anyhow::Context;
use tessera_scenarios::PdeKind;

use super::bench::thread_pool;
use super::pde_arg;
use crate::constraint_check::{
    DEFAULT_REPEATS, GridSize, ScalingConfig, ScalingReport, bench_scaling,
};
use crate::output_path::check_output;
use crate::plots::{PLOT_EXTENSION, SpeedupCurve, plot_speedup};

/// The PDEs the sweep is defined for (the paper's two).
const PDES: [PdeKind; 2] = [PdeKind::DiffusionSorption, PdeKind::NavierStokes];

/// Arguments of `tessera bench scaling`.
#[derive(Debug, clap::Args)]
pub struct ScalingArgs {
    /// The PDE [default: both].
    #[arg(long, value_parser = pde_arg::parser_among(&PDES))]
    pde: Option<PdeKind>,
    /// Sampled-point totals, comma-separated; each a multiple of the number of
    /// experts (4) [default: 100,300,…,100000 for diffusion-sorption, up to
    /// 10000 for navier-stokes].
    #[arg(long, value_delimiter = ',')]
    points: Vec<usize>,
    /// Timed runs of each method per total, alternating (after one warm-up each).
    #[arg(long, default_value_t = DEFAULT_REPEATS)]
    repeats: usize,
    /// Time levels [default: 101, or 64 for navier-stokes].
    #[arg(long)]
    nt: Option<usize>,
    /// Points along x [default: 1024, or 64 for navier-stokes].
    #[arg(long)]
    nx: Option<usize>,
    /// Points along y (navier-stokes) [default: 64].
    #[arg(long)]
    ny: Option<usize>,
    /// Number of basis functions N [default: 16].
    #[arg(long)]
    basis: Option<usize>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the synthetic problems and the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the reports (one per PDE) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the speed-up curves to this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

impl ScalingArgs {
    /// Runs the sweep of each PDE, prints its table, writes the files asked for.
    pub fn run(self) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            check_output("--json", path, None)?;
        }
        if let Some(path) = &self.plot {
            check_output("--plot", path, Some(PLOT_EXTENSION))?;
        }
        let pool = thread_pool(self.threads)?;
        let mut reports = Vec::new();
        for pde in self.pde.map_or(PDES.to_vec(), |pde| vec![pde]) {
            let config = self.config(pde);
            let report = pool
                .install(|| bench_scaling(&config))
                .with_context(|| format!("bench scaling of {}", pde.name()))?;
            print_table(&report);
            reports.push(report);
        }
        if let Some(path) = &self.json {
            let text = serde_json::to_string_pretty(&reports)?;
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &self.plot {
            let curves: Vec<SpeedupCurve> = reports.iter().flat_map(curves).collect();
            let title = format!(
                "Experts over one constraint: the constraint layer, {} threads",
                reports[0].threads
            );
            plot_speedup(path, &title, &curves)?;
        }
        Ok(())
    }

    /// The paper's sizes for `pde` with the arguments given on top.
    fn config(&self, pde: PdeKind) -> ScalingConfig {
        let defaults = ScalingConfig::paper_default(pde);
        ScalingConfig {
            grid: GridSize {
                nt: self.nt.unwrap_or(defaults.grid.nt),
                nx: self.nx.unwrap_or(defaults.grid.nx),
                // Over both PDEs `--ny` sizes the 2-D one; given for a
                // 1-D `--pde`, it reaches the grid, which refuses it.
                ny: match defaults.grid.ny {
                    Some(ny) => Some(self.ny.unwrap_or(ny)),
                    None => self.ny.filter(|_| self.pde.is_some()),
                },
            },
            n_basis: self.basis.unwrap_or(defaults.n_basis),
            totals: if self.points.is_empty() {
                defaults.totals.clone()
            } else {
                self.points.clone()
            },
            repeats: self.repeats,
            seed: self.seed,
            ..defaults
        }
    }
}

/// The training and inference curves of one PDE.
fn curves(report: &ScalingReport) -> [SpeedupCurve; 2] {
    let curve = |step: &str, speedup: fn(&_) -> f64| SpeedupCurve {
        label: format!("{}, {step}", report.pde),
        points: report
            .speedups
            .iter()
            .map(|s| (s.points_total as f64, speedup(s)))
            .collect(),
    };
    [
        curve("training (fwd+bwd)", |s| s.training),
        curve("inference (fwd)", |s| s.inference),
    ]
}

/// Prints one PDE's medians, speed-ups and LM iterations.
fn print_table(report: &ScalingReport) {
    println!(
        "{}, grid {:?}, N = {}, experts {:?}, {} threads, medians of {} (s):",
        report.pde, report.grid, report.basis, report.moe_experts, report.threads, report.repeats
    );
    println!(
        "{:>8} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8} | LM iterations single; moe",
        "P", "single fwd", "moe fwd", "speed-up", "single f+b", "moe f+b", "speed-up"
    );
    // The entries are single, then MoE, for each total.
    for (pair, speedup) in report.entries.chunks(2).zip(&report.speedups) {
        let [single, moe] = pair else { continue };
        println!(
            "{:>8} | {:>10.4} {:>10.4} {:>8.2} | {:>10.4} {:>10.4} {:>8.2} | {:?}; {:?}",
            speedup.points_total,
            single.bench.fwd_median_s,
            moe.bench.fwd_median_s,
            speedup.inference,
            single.bench.fwd_bwd_median_s,
            moe.bench.fwd_bwd_median_s,
            speedup.training,
            single.bench.iterations[0],
            moe.bench.iterations[0],
        );
    }
}
