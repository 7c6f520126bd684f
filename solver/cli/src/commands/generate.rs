//! `tessera generate`: make a dataset from a scenario with the reference solver
//! (see [`tessera_scenarios::dataset::generate`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use tessera_scenarios::dataset::{Generation, Split, generate_with_summary};
use tessera_scenarios::{Dataset, MAX_SAMPLES, Scenario};

use crate::output_path::check_output;

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
    /// Print one JSON line on stdout: the file, split, samples, shape, time
    /// and, for a PDE defined in TOML, what its time integrations cost.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// Generates and writes the dataset, then reports the time per sample
    /// and, for a PDE defined in TOML, what its time integrations cost.
    pub fn run(self) -> anyhow::Result<()> {
        self.run_to(&mut std::io::stdout().lock())
    }

    /// [`Args::run`], with the `--json` line written to `out`.
    fn run_to(self, out: &mut impl Write) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        scenario.set_all(&self.overrides)?;
        let split: Split = self.split.parse()?;
        Dataset::check_format(&self.out)?;
        check_output("--out", &self.out, None)?;
        let mut options = Generation::for_split(&scenario, split);
        options.samples = self.samples.unwrap_or(options.samples);
        if !(1..=MAX_SAMPLES).contains(&options.samples) {
            bail!(
                "--samples {}: must be between 1 and {MAX_SAMPLES}",
                options.samples
            );
        }
        options.seed = self.seed.unwrap_or(options.seed);
        options.quiet = self.quiet;
        let start = Instant::now();
        let (dataset, summary) = generate_with_summary(&scenario, &options)?;
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
        if let Some(summary) = &summary {
            eprintln!("time stepping: {summary}");
        }
        if self.json {
            let line = serde_json::json!({
                "file": self.out,
                "split": split.to_string(),
                "samples": dataset.len(),
                "dims": dataset.dims(),
                "seconds": elapsed,
                "threads": rayon::current_num_threads(),
                "time_stepping": summary,
            });
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tessera_scenarios::Dataset;
    use tessera_scenarios::dataset::generate;

    use super::*;
    use crate::commands::{Cli, Command};

    fn scenario(name: &str) -> String {
        format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// `tessera generate ARGS --quiet --json` in-process: the JSON line.
    fn generate_json(args: &[&str]) -> serde_json::Value {
        let mut argv = vec!["tessera", "generate"];
        argv.extend(args);
        argv.extend(["--quiet", "--json"]);
        let Command::Generate(generate) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("parsed as another command");
        };
        let mut out = Vec::new();
        generate.run_to(&mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    /// An `--out` that cannot be written (a directory, or in a folder that
    /// does not exist) is refused by the flag before anything is generated,
    /// not after.
    #[test]
    fn an_output_that_cannot_be_written_is_refused_first() {
        let dir = std::env::temp_dir().join(format!("tessera-generate-out-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("taken.safetensors")).unwrap();
        let quickstart = scenario("quickstart.toml");
        for (out, reason) in [
            (dir.join("taken.safetensors"), "is a directory"),
            (dir.join("missing").join("x.safetensors"), "no directory"),
        ] {
            let argv = ["tessera", "generate", &quickstart, "--quiet", "--out"];
            let argv = [&argv[..], &[out.to_str().unwrap()]].concat();
            let Command::Generate(generate) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("parsed as another command");
            };
            let err = generate.run_to(&mut Vec::new()).unwrap_err().to_string();
            assert!(err.starts_with("--out ") && err.contains(reason), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Burgers on its 4× finer grid is stiff, so `auto` starts explicitly and
    /// switches in every sample; the JSON line says so, with counts that
    /// obey Dormand–Prince's six evaluations per attempted step, and the file
    /// holds what the library generates. A built-in PDE has no
    /// method-of-lines summary.
    #[test]
    fn the_json_line_reports_the_file_and_the_time_stepping() {
        let dir = std::env::temp_dir().join(format!("tessera-generate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("burgers.safetensors");
        let burgers = scenario("burgers-small.toml");
        let auto = "data.reference.integrator=auto";
        let line = generate_json(&[
            &burgers,
            "--out",
            path.to_str().unwrap(),
            "--samples",
            "2",
            "--split",
            "test",
            "--set",
            auto,
        ]);
        assert_eq!(line["samples"], 2, "{line}");
        assert_eq!(line["split"], "test", "{line}");
        assert_eq!(line["dims"], serde_json::json!([26, 64]), "{line}");
        let stepping = &line["time_stepping"];
        assert_eq!(stepping["method"], "auto", "{line}");
        assert_eq!(stepping["samples"], 2, "{line}");
        assert_eq!(stepping["switched"], 2, "{line}");
        let times = stepping["switch_times"].as_array().unwrap();
        assert!(times[0].as_f64() <= times[1].as_f64(), "{line}");
        let count = |key: &str| stepping["total"][key].as_u64().unwrap();
        let (steps, explicit) = (count("steps"), count("explicit_steps"));
        assert!(0 < explicit && explicit < steps, "{line}");
        // One evaluation at each sample's start, six per explicit step.
        assert!(count("rhs_evaluations") >= 2 + 6 * explicit, "{line}");

        let mut expected = Scenario::from_file(&burgers).unwrap();
        expected.set(auto).unwrap();
        let mut options = Generation::for_split(&expected, Split::Test);
        (options.samples, options.quiet) = (2, true);
        let written = Dataset::read(&path).unwrap();
        let direct = generate(&expected, &options).unwrap();
        // (The file stores the coordinates in f32, like the values.)
        assert_eq!(written.config(), direct.config());
        assert_eq!(written.trajectories(), direct.trajectories());

        let builtin = dir.join("quickstart.safetensors");
        let line = generate_json(&[
            &scenario("quickstart.toml"),
            "--out",
            builtin.to_str().unwrap(),
            "--samples",
            "1",
        ]);
        assert_eq!(line["time_stepping"], serde_json::Value::Null, "{line}");
        assert_eq!(line["samples"], 1, "{line}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
