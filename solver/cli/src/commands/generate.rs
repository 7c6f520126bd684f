//! `tessera generate`: make a dataset from a scenario with the reference solver
//! (see [`tessera_scenarios::dataset::generate`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tessera_scenarios::Scenario;
use tessera_scenarios::dataset::{Generation, Split, generate};

/// Arguments of `tessera generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Output file: `.safetensors`, or `.h5` with the `hdf5` feature (PDEBench layout).
    #[arg(long)]
    out: PathBuf,
    /// Number of samples [default: the scenario's size of the split].
    #[arg(long)]
    samples: Option<usize>,
    /// Seed of the initial conditions [default: the scenario's seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Which split: different random streams; a 2-D test split is written at
    /// the largest evaluation resolution.
    #[arg(long, default_value = "train", value_parser = ["train", "test"])]
    split: String,
    /// Override a scenario setting, e.g. `--set data.reference.rtol=1e-6` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Generates and writes the dataset, then reports the time per sample.
    pub fn run(self) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        scenario.set_all(&self.overrides)?;
        let split: Split = self.split.parse()?;
        let mut options = Generation::for_split(&scenario, split);
        options.samples = self.samples.unwrap_or(options.samples);
        options.seed = self.seed.unwrap_or(options.seed);
        options.quiet = self.quiet;
        let start = Instant::now();
        let dataset = generate(&scenario, &options)?;
        let elapsed = start.elapsed().as_secs_f64();
        dataset
            .write(&self.out)
            .with_context(|| format!("writing {}", self.out.display()))?;
        eprintln!(
            "wrote {} {split} samples of shape {:?} to {} ({elapsed:.2} s, {:.3} s per sample on {} threads)",
            dataset.len(),
            dataset.dims(),
            self.out.display(),
            elapsed / dataset.len() as f64,
            rayon::current_num_threads(),
        );
        Ok(())
    }
}
