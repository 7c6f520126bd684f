//! `tessera predict`: a trained run's predictions for initial conditions
//! read from a file, written as a dataset (see
//! [`tessera_solver::embed::read_initial_conditions`] for the files read).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tessera_scenarios::Dataset;
use tessera_solver::embed::{LmStatus, TrainedModel, WorkerPool, read_initial_conditions};

use crate::device::DeviceArg;
use crate::error::at_least_one;
use crate::output_path::check_output;
use crate::progress::prediction_bar;

/// Arguments of `tessera predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run directory (from `tessera run` or `tessera train`).
    run_dir: PathBuf,
    /// Initial conditions: a dataset (`.safetensors`, or `.h5` with the
    /// `hdf5` feature; each sample's first frame), or a `.safetensors` file
    /// with one tensor `ic`, F32 or F64, `[batch, X, (Y), (1)]`. Spatial
    /// sizes that are multiples of the run's grid are restricted onto it
    /// (a dataset by its coordinates, a bare `ic` to every k-th point).
    #[arg(long)]
    ics: PathBuf,
    /// Output file: `.safetensors`, or `.h5` with the `hdf5` feature, in the
    /// layout `tessera generate` writes (float32).
    #[arg(long)]
    out: PathBuf,
    /// Predict the first N initial conditions only [default: all].
    #[arg(long)]
    samples: Option<usize>,
    #[command(flatten)]
    device: DeviceArg,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print one JSON line on stdout: the file, samples, shape, time and
    /// every solve that did not converge.
    #[arg(long)]
    json: bool,
}

/// A solve that stopped without converging, as the report lists it.
#[derive(serde::Serialize)]
struct Unconverged {
    sample: usize,
    expert: usize,
    reason: String,
    iterations: usize,
    final_residual: f64,
}

impl Args {
    /// Loads the run, predicts in batches of the run's batch size, writes the
    /// dataset and reports the solves.
    pub fn run(self) -> anyhow::Result<()> {
        self.run_to(&mut std::io::stdout().lock())
    }

    /// [`Args::run`], with the `--json` line written to `out`.
    fn run_to(self, out: &mut impl Write) -> anyhow::Result<()> {
        Dataset::check_format(&self.out)?;
        check_output("--out", &self.out, None)?;
        if let Some(samples) = self.samples {
            at_least_one("--samples", samples)?;
        }
        // The run's grid from its config, so that a bad file of initial
        // conditions is found before the checkpoint is read.
        let scenario = tessera_solver::RunDir::new(&self.run_dir).read_config()?;
        let dims = scenario.dims();
        let ics = read_initial_conditions(&self.ics, &scenario.grid()?, self.samples)
            .with_context(|| format!("reading initial conditions from {}", self.ics.display()))?;
        let device = self.device.chosen().unwrap_or(scenario.device);
        let model = TrainedModel::load_on(&self.run_dir, device)?;
        let start = Instant::now();
        let pool = WorkerPool::new(0)?;
        let batch = model.scenario().training.batch_size;
        let indices: Vec<usize> = (0..ics.len()).collect();
        let bar = prediction_bar(ics.len(), self.quiet);
        let (mut fields, mut statuses) = (Vec::new(), Vec::new());
        for chunk in indices.chunks(batch) {
            let flat = ics.initial_conditions(chunk).concat();
            let predictions = model.predict_in(&flat, &pool)?;
            fields.extend(predictions.fields);
            statuses.extend(predictions.statuses);
            let failed = statuses.iter().filter(|s| !s.converged()).count();
            bar.set_message(format!("not converged {failed}"));
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let elapsed = start.elapsed().as_secs_f64();
        model
            .dataset(&fields)?
            .write(&self.out)
            .with_context(|| format!("writing {}", self.out.display()))?;
        let unconverged = unconverged(&statuses, model.n_experts());
        eprintln!(
            "wrote {} predictions of shape {dims:?} to {} ({elapsed:.2} s, {:.3} s per sample on {} threads); {}",
            ics.len(),
            self.out.display(),
            elapsed / ics.len() as f64,
            pool.threads(),
            solves_line(statuses.len(), &unconverged),
        );
        if self.json {
            let line = serde_json::json!({
                "file": self.out,
                "samples": ics.len(),
                "dims": dims,
                "seconds": elapsed,
                "threads": pool.threads(),
                "solves": statuses.len(),
                "unconverged": unconverged,
            });
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// Every solve of `statuses` (`[sample, expert]`, `experts` per sample)
/// that did not converge.
fn unconverged(statuses: &[LmStatus], experts: usize) -> Vec<Unconverged> {
    statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.converged())
        .map(|(i, s)| Unconverged {
            sample: i / experts,
            expert: i % experts,
            reason: format!("{:?}", s.reason),
            iterations: s.iterations,
            final_residual: s.final_residual,
        })
        .collect()
}

/// `solves` and those that did not converge, counted by reason.
fn solves_line(solves: usize, unconverged: &[Unconverged]) -> String {
    if unconverged.is_empty() {
        return format!("{solves} constraint solves, all converged");
    }
    let mut reasons = BTreeMap::new();
    for u in unconverged {
        *reasons.entry(u.reason.as_str()).or_insert(0) += 1;
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(
        "{solves} constraint solves, {} did not converge ({}; the weights are the best found)",
        unconverged.len(),
        reasons.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use safetensors::Dtype;
    use safetensors::tensor::TensorView;
    use tessera_scenarios::dataset::{Generation, Split, generate};
    use tessera_scenarios::{Dataset, Scenario};

    use crate::commands::{Cli, Command};

    const SCENARIO: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/quickstart.toml"
    );

    fn cli(args: &[&str]) {
        let mut argv = vec!["tessera"];
        argv.extend(args);
        Cli::try_parse_from(argv).unwrap().run().unwrap();
    }

    /// `tessera predict RUN ARGS --quiet --json` in-process: the JSON line,
    /// or the error.
    fn predict(run: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut argv = vec!["tessera", "predict", run.to_str().unwrap()];
        argv.extend(args);
        argv.extend(["--quiet", "--json"]);
        let Command::Predict(predict) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("parsed as another command");
        };
        let mut out = Vec::new();
        predict.run_to(&mut out)?;
        Ok(serde_json::from_slice(&out)?)
    }

    /// `--samples 0` is refused by its flag before anything is read (it
    /// reached the file's reader as a count of initial conditions).
    #[test]
    fn zero_samples_are_refused_by_the_flag() {
        let args = ["--ics", "none.safetensors", "--out", "none.safetensors"];
        let err = predict(
            Path::new("no-such-run"),
            &[&args[..], &["--samples", "0"]].concat(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid --samples = 0: must be at least 1");
    }

    /// A safetensors file with one tensor `ic` of `dtype` and `shape`.
    fn write_bare(path: &Path, dtype: Dtype, shape: &[usize], bytes: &[u8]) {
        let view = TensorView::new(dtype, shape.to_vec(), bytes).unwrap();
        safetensors::serialize_to_file([("ic", view)], None, path).unwrap();
    }

    fn f64_bytes(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
        let (mut diff, mut norm) = (0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            diff += (f64::from(x) - f64::from(y)).powi(2);
            norm += f64::from(y).powi(2);
        }
        (diff / norm).sqrt()
    }

    /// A quickstart model trained for three steps predicts three test
    /// trajectories. The oracle is `tessera eval` on the same file: the
    /// relative L2 errors of the written predictions against the truth,
    /// computed here, must be the per-sample errors the evaluation reports
    /// (to the float32 rounding of the file), on the data's own grid. The
    /// same initial conditions as a bare `ic` tensor give the same file (in
    /// float64, and in float32 with a channel axis); a twice finer `ic` whose
    /// odd points are nonsense gives it too (every second point is read);
    /// bad files are errors naming what is wrong, and write nothing.
    #[test]
    fn predictions_are_what_eval_measures() {
        let dir = std::env::temp_dir().join(format!("tessera-predict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let run = dir.join("run");
        let cache = format!("data.cache_dir={}", path("cache"));
        cli(&[
            "train",
            SCENARIO,
            "--out",
            &path("run"),
            "--set",
            "training.steps=3",
            "--set",
            &cache,
            "--quiet",
        ]);
        let scenario = Scenario::from_file(SCENARIO).unwrap();
        let options = Generation {
            samples: 3,
            seed: 11,
            split: Split::Test,
            quiet: true,
        };
        let truth = generate(&scenario, &options).unwrap();
        truth.write(path("truth.safetensors")).unwrap();

        cli(&[
            "eval",
            &path("run"),
            "--data",
            &path("truth.safetensors"),
            "--quiet",
        ]);
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        let eval_errors = summary["rel_l2"].as_array().unwrap();
        assert_eq!(eval_errors.len(), 3, "{summary}");

        let line = predict(
            &run,
            &[
                "--ics",
                &path("truth.safetensors"),
                "--out",
                &path("pred.safetensors"),
            ],
        )
        .unwrap();
        assert_eq!(line["samples"], 3, "{line}");
        assert_eq!(line["dims"], serde_json::json!([26, 64]), "{line}");
        assert_eq!(line["solves"], 12, "{line}");
        let predicted = Dataset::read(path("pred.safetensors")).unwrap();
        assert_eq!(predicted.len(), 3);
        assert_eq!((predicted.t(), predicted.x()), (truth.t(), truth.x()));
        for (i, want) in eval_errors.iter().enumerate() {
            let got = rel_l2(predicted.trajectory(i), truth.trajectory(i));
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-6 * want,
                "sample {i}: {got} vs {want}"
            );
        }

        let ics: Vec<f64> = (0..3)
            .flat_map(|i| truth.initial_condition(i).iter().map(|&v| f64::from(v)))
            .collect();
        write_bare(
            &dir.join("ic.safetensors"),
            Dtype::F64,
            &[3, 64],
            &f64_bytes(&ics),
        );
        predict(
            &run,
            &[
                "--ics",
                &path("ic.safetensors"),
                "--out",
                &path("bare.safetensors"),
            ],
        )
        .unwrap();
        assert_eq!(Dataset::read(path("bare.safetensors")).unwrap(), predicted);

        let fine: Vec<f64> = ics[..64].iter().flat_map(|&v| [v, 1e3]).collect();
        write_bare(
            &dir.join("fine.safetensors"),
            Dtype::F64,
            &[1, 128],
            &f64_bytes(&fine),
        );
        let line = predict(
            &run,
            &[
                "--ics",
                &path("fine.safetensors"),
                "--out",
                &path("one.safetensors"),
            ],
        )
        .unwrap();
        assert_eq!(line["samples"], 1, "{line}");
        let one = Dataset::read(path("one.safetensors")).unwrap();
        assert_eq!(one.trajectory(0), predicted.trajectory(0));

        // float32 with PDEBench's channel axis: the dataset's own values.
        let f32_bytes: Vec<u8> = truth
            .initial_condition(0)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_bare(
            &dir.join("f32.safetensors"),
            Dtype::F32,
            &[1, 64, 1],
            &f32_bytes,
        );
        let args = [
            "--ics",
            &path("f32.safetensors"),
            "--out",
            &path("f32-pred.safetensors"),
        ];
        predict(&run, &args).unwrap();
        let from_f32 = Dataset::read(path("f32-pred.safetensors")).unwrap();
        assert_eq!(from_f32.trajectory(0), predicted.trajectory(0));

        let two = ["--samples", "2", "--out", &path("two.safetensors")];
        predict(
            &run,
            &[&["--ics", &path("truth.safetensors")][..], &two].concat(),
        )
        .unwrap();
        let two = Dataset::read(path("two.safetensors")).unwrap();
        assert_eq!(two.trajectories(), &predicted.trajectories()[..2]);

        let error = |file: &str, dtype: Dtype, shape: &[usize], bytes: &[u8]| -> String {
            write_bare(&dir.join(file), dtype, shape, bytes);
            let args = ["--ics", &path(file), "--out", &path("bad.safetensors")];
            let err = predict(&run, &args).unwrap_err();
            format!("{err:#}")
        };
        let shown = error(
            "short.safetensors",
            Dtype::F64,
            &[1, 63],
            &f64_bytes(&ics[..63]),
        );
        assert!(shown.contains("expected [64], got [63]"), "{shown}");
        let mut nan = ics[..64].to_vec();
        nan[7] = f64::NAN;
        let shown = error("nan.safetensors", Dtype::F64, &[1, 64], &f64_bytes(&nan));
        assert!(shown.contains("non-finite"), "{shown}");
        let shown = error(
            "int.safetensors",
            Dtype::I64,
            &[1, 64],
            &f64_bytes(&ics[..64]),
        );
        assert!(
            shown.contains("int.safetensors") && shown.contains("I64"),
            "{shown}"
        );
        let more = ["--samples", "4", "--out", &path("bad.safetensors")];
        let err = predict(
            &run,
            &[&["--ics", &path("truth.safetensors")][..], &more].concat(),
        );
        assert!(format!("{:#}", err.unwrap_err()).contains("initial conditions"));
        assert!(!dir.join("bad.safetensors").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
