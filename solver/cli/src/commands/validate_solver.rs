//! `tessera validate-solver`: re-solve every sample of a data file from its
//! initial condition with our reference solver and report the relative L2
//! errors (see [`tessera_scenarios::dataset::validate_solver`]).

use std::io::Write;
use std::path::PathBuf;

use tessera_scenarios::dataset::validate_solver;
use tessera_scenarios::{Dataset, Scenario};

/// Arguments of `tessera validate-solver`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML) giving the PDE constants and solver settings.
    scenario: PathBuf,
    /// Data file (`.safetensors`, or `.h5` with the `hdf5` feature).
    #[arg(long)]
    data: PathBuf,
    /// Override a scenario setting (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print JSON (`rel_l2`, `rel_l2_mean`, `solver_resolution`) instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// Runs the check and prints the errors on stdout.
    pub fn run(self) -> anyhow::Result<()> {
        self.run_to(&mut std::io::stdout().lock())
    }

    /// Runs the check and writes the report to `out` (a parameter so that the
    /// report itself can be tested).
    fn run_to(self, out: &mut impl Write) -> anyhow::Result<()> {
        let mut scenario = Scenario::from_file(&self.scenario)?;
        scenario.set_all(&self.overrides)?;
        let dataset = Dataset::read(&self.data)?;
        let check = validate_solver(&scenario, &dataset, self.quiet)?;
        if self.json {
            serde_json::to_writer_pretty(&mut *out, &check)?;
            writeln!(out)?;
        } else {
            for (i, err) in check.rel_l2.iter().enumerate() {
                writeln!(out, "sample {i:04}: rel L2 {err:.3e}")?;
            }
            writeln!(
                out,
                "mean rel L2 {:.3e} over {} samples (solver resolution {})",
                check.rel_l2_mean,
                check.rel_l2.len(),
                check.solver_resolution
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tessera_scenarios::dataset::{Generation, Split, generate};

    use super::*;
    use crate::commands::Cli;

    const SCENARIO: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/diffusion-sorption-small.toml"
    );

    /// `tessera generate` with every option, then `tessera validate-solver
    /// --json` on its output: the file holds what the library generates for
    /// those options, and the report has one small error per sample.
    #[test]
    fn generate_then_validate_end_to_end() {
        let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("ds.safetensors");
        let data_arg = data.to_str().unwrap();
        Cli::try_parse_from([
            "tessera",
            "generate",
            SCENARIO,
            "--out",
            data_arg,
            "--samples",
            "3",
            "--seed",
            "5",
            "--split",
            "test",
            "--set",
            "grid.nt=41",
            "--quiet",
        ])
        .unwrap()
        .run()
        .unwrap();
        let dataset = Dataset::read(&data).unwrap();
        let mut scenario = Scenario::from_file(SCENARIO).unwrap();
        scenario.set("grid.nt=41").unwrap();
        let options = Generation {
            samples: 3,
            seed: 5,
            split: Split::Test,
            quiet: true,
        };
        assert_eq!(dataset, generate(&scenario, &options).unwrap());
        assert_eq!(dataset.dims(), [41, 128]);

        let args = |data: PathBuf| Args {
            scenario: SCENARIO.into(),
            data,
            overrides: vec![],
            json: true,
            quiet: true,
        };
        let mut out = Vec::new();
        args(data.clone()).run_to(&mut out).unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let errors = report["rel_l2"].as_array().unwrap();
        assert_eq!(errors.len(), 3);
        assert!(
            errors.iter().all(|e| e.as_f64().unwrap() < 1e-6),
            "{report}"
        );
        assert!(report["rel_l2_mean"].as_f64().unwrap() < 1e-6, "{report}");

        let missing = dir.join("missing.safetensors");
        let err = args(missing).run_to(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("missing.safetensors"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
