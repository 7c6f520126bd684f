//! `tessera runs`: the run directories under a folder (`runs/` by default),
//! one row each — scenario, method, steps, test error against the
//! persistence baseline, when and with which build it started — so that a
//! study of many runs can be read without opening each `summary.json`.
//!
//! A row says what the files say: a run stopped by a time limit has steps
//! but no error, a summary written by `tessera eval` with other settings is
//! marked (its `evaluated_with`), as are a summary of fewer steps than the
//! run has trained since (an evaluation of a checkpoint, then a resume) and
//! a directory `tessera eval --out` wrote (a summary without a run's
//! config); a directory that cannot be read is listed with the reason
//! instead of ending the listing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use tessera_solver::{RunDir, Summary, method_name};

/// Arguments of `tessera runs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folders holding run directories, or `tessera eval --out` directories
    /// (one of them given itself is listed alone) [default: runs].
    dirs: Vec<PathBuf>,
    /// One JSON line per run instead of the table.
    #[arg(long)]
    json: bool,
}

/// One run's row.
#[derive(Debug, Serialize)]
struct Row {
    /// The run directory.
    run: PathBuf,
    /// Scenario name and method (`moe`, `hard`, `soft`).
    scenario: Option<String>,
    method: Option<String>,
    /// Training steps done (the last metrics record's, else the summary's).
    steps: Option<usize>,
    /// The steps the summary's model had trained, where the run trained on
    /// after it was evaluated (`tessera eval` of a checkpoint, then a
    /// resume): its error is not the run's latest model's.
    evaluated_at_step: Option<usize>,
    /// Test relative L2 (mean, std) and the persistence baseline's mean, from
    /// `summary.json`.
    rel_l2_mean: Option<f64>,
    rel_l2_std: Option<f64>,
    persistence: Option<f64>,
    /// Whether the summary comes from an evaluation with other data or
    /// settings (`tessera eval --data/--set`).
    other_settings: bool,
    /// When the run's first command started (UTC), and the last command's
    /// build, from `provenance.jsonl`.
    started: Option<String>,
    commit: Option<String>,
    /// Why the directory could not be read, if it could not.
    error: Option<String>,
}

impl Args {
    /// Prints the rows, oldest start first.
    pub fn run(self) -> anyhow::Result<()> {
        let dirs = match self.dirs.is_empty() {
            true => vec![PathBuf::from("runs")],
            false => self.dirs,
        };
        let mut rows = Vec::new();
        for dir in &dirs {
            for run in run_dirs(dir)? {
                rows.push(row(&run));
            }
        }
        rows.sort_by(|a, b| (&a.started, &a.run).cmp(&(&b.started, &b.run)));
        if self.json {
            for row in &rows {
                println!("{}", serde_json::to_string(row)?);
            }
        } else {
            print_table(&rows);
        }
        Ok(())
    }
}

/// `dir` itself if it is a run (or evaluation) directory, else its
/// subdirectories that are.
fn run_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if is_listed(dir) {
        return Ok(vec![dir.to_owned()]);
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut runs = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() && is_listed(&path) {
            runs.push(path);
        }
    }
    Ok(runs)
}

/// A run directory (its `config.toml`) or an evaluation's (`summary.json`).
fn is_listed(dir: &Path) -> bool {
    let run = RunDir::new(dir);
    run.config().exists() || run.summary().exists()
}

/// What `path`'s files say; a file that is there but cannot be read is the
/// row's `error`.
fn row(path: &Path) -> Row {
    let mut row = Row {
        run: path.to_owned(),
        scenario: None,
        method: None,
        steps: None,
        evaluated_at_step: None,
        rel_l2_mean: None,
        rel_l2_std: None,
        persistence: None,
        other_settings: false,
        started: None,
        commit: None,
        error: None,
    };
    if let Err(e) = fill(&mut row, &RunDir::new(path)) {
        row.error = Some(format!("{e:#}"));
    }
    row
}

fn fill(row: &mut Row, run: &RunDir) -> anyhow::Result<()> {
    if run.config().exists() {
        let scenario = run.read_config()?;
        row.scenario = Some(scenario.name.clone());
        row.method = Some(method_name(&scenario));
    }
    if run.provenance().exists() {
        let text = std::fs::read_to_string(run.provenance())
            .with_context(|| format!("reading {}", run.provenance().display()))?;
        let records: Vec<serde_json::Value> = (text.lines())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", run.provenance().display()))?;
        let text_of = |v: Option<&serde_json::Value>, key: &str| {
            v.and_then(|v| v[key].as_str()).map(str::to_owned)
        };
        row.started = text_of(records.first(), "started");
        row.commit = text_of(records.last(), "commit");
    }
    if run.summary().exists() {
        let bytes = std::fs::read(run.summary())
            .with_context(|| format!("reading {}", run.summary().display()))?;
        let summary: Summary = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", run.summary().display()))?;
        row.scenario = Some(summary.scenario);
        row.method = Some(summary.method);
        row.steps = Some(summary.steps);
        row.rel_l2_mean = Some(summary.rel_l2_mean);
        row.rel_l2_std = Some(summary.rel_l2_std);
        row.persistence = summary.persistence.map(|p| p.mean);
        row.other_settings = summary.evaluated_with.is_some();
    }
    if run.metrics().exists() {
        let trained = run.read_metrics()?.last().map(|r| r.step);
        if let (Some(trained), Some(evaluated)) = (trained, row.steps) {
            row.evaluated_at_step = (trained != evaluated).then_some(evaluated);
        }
        row.steps = trained.or(row.steps);
    }
    Ok(())
}

/// The rows as an aligned table.
fn print_table(rows: &[Row]) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let error = match (&r.error, r.rel_l2_mean, r.rel_l2_std) {
                // The first line: a TOML error goes on to draw the line it
                // points at (`--json` keeps all of it).
                (Some(e), _, _) => format!("unreadable: {}", e.lines().next().unwrap_or("")),
                (None, Some(m), Some(s)) => {
                    let notes: Vec<String> = [
                        r.other_settings.then(|| "other settings".to_owned()),
                        r.evaluated_at_step.map(|step| format!("at step {step}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    match notes.is_empty() {
                        true => format!("{m:.4} ± {s:.4}"),
                        false => format!("{m:.4} ± {s:.4} ({})", notes.join(", ")),
                    }
                }
                _ => "not evaluated".to_owned(),
            };
            [
                r.run.display().to_string(),
                or_dash(r.scenario.clone()),
                or_dash(r.method.clone()),
                or_dash(r.steps.map(|s| s.to_string())),
                error,
                or_dash(r.persistence.map(|p| format!("{p:.4}"))),
                or_dash(r.started.clone()),
            ]
        })
        .collect();
    let header = [
        "run",
        "scenario",
        "method",
        "steps",
        "test rel L2",
        "persistence",
        "started (UTC)",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = (row.iter().zip(&widths))
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
