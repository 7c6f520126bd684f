//! `metrics.jsonl`: one JSON object per training step, appended as the run goes
//! (so a killed run keeps its history), and cut back to the checkpoint's step
//! on resume so the file never holds steps twice.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run_dir::write_atomic;
use crate::SolverError;

/// Relative L2 error on held-out trajectories.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Mean over the samples.
    pub rel_l2_mean: f64,
    /// Population standard deviation over the samples.
    pub rel_l2_std: f64,
    /// Solves of the validation whose status is not `converged`.
    pub failed_solves: usize,
}

/// What one training step reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Updates done, this one included (1 for the first).
    pub step: usize,
    /// Learning rate of this update.
    pub lr: f64,
    /// Weighted training loss.
    pub loss: f64,
    /// Unweighted loss parts.
    pub pde: f64,
    pub ic: f64,
    pub bc: f64,
    pub data: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean Levenberg–Marquardt iterations of this step's solves.
    pub lm_iterations_mean: f64,
    /// Solves of this step whose status is not `converged`, and all solves.
    pub failed_solves: usize,
    pub solves: usize,
    /// Training seconds since the run started (across resumes).
    pub seconds: f64,
    /// Present on validation steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// Present on the step a run stopped at before `training.steps`, with a
    /// checkpoint; a later resume keeps the line, so the log shows where the
    /// run was split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
}

/// Why a run stopped before `training.steps` (see [`StepRecord::stopped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The process's time budget (`--max-time`) would have run out during the
    /// next step and its save.
    TimeLimit,
    /// Asked to stop ([`crate::TrainOptions::stop`]: the CLI on SIGTERM,
    /// SIGINT or SIGUSR1).
    Interrupted,
}

/// An open metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path` for appending. With `keep_through = Some(step)` the lines of
    /// later steps are dropped first (a resume from a checkpoint at `step`);
    /// with `None` the file starts empty.
    pub fn open(path: &Path, keep_through: Option<usize>) -> Result<Self, SolverError> {
        // The kept lines as they were written: parsed back and written
        // again, a record could differ in its last digits.
        let mut text = String::new();
        if let Some(step) = keep_through {
            let written = std::fs::read_to_string(path).map_err(|e| SolverError::io(path, e))?;
            for (line, record) in parsed(path, &written)? {
                if record.step <= step {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| SolverError::io(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Flushes the appended lines to the disk (before a checkpoint, so that
    /// one that survives a power cut has its steps' lines).
    pub fn sync(&mut self) -> Result<(), SolverError> {
        self.file
            .sync_data()
            .map_err(|e| SolverError::io(&self.path, e))
    }

    /// Appends one record (one line, flushed).
    pub fn append(&mut self, record: &StepRecord) -> Result<(), SolverError> {
        let text = line(record)?;
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| SolverError::io(&self.path, e))
    }
}

fn line(record: &StepRecord) -> Result<String, SolverError> {
    let mut text = serde_json::to_string(record).map_err(|source| SolverError::Json {
        path: PathBuf::from("metrics.jsonl"),
        line: None,
        source,
    })?;
    text.push('\n');
    Ok(text)
}

/// Reads a metrics file. A last line cut short by a kill is ignored; any other
/// unreadable line is an error.
pub fn read(path: &Path) -> Result<Vec<StepRecord>, SolverError> {
    let text = std::fs::read_to_string(path).map_err(|e| SolverError::io(path, e))?;
    Ok(parsed(path, &text)?.into_iter().map(|(_, r)| r).collect())
}

/// Each line of the metrics file `path` holding `text` with its record; a
/// last line cut short (a kill mid-write) is left out.
fn parsed<'t>(path: &Path, text: &'t str) -> Result<Vec<(&'t str, StepRecord)>, SolverError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str(l) {
            Ok(record) => records.push((*l, record)),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(source) => {
                return Err(SolverError::Json {
                    path: path.to_owned(),
                    line: Some(i + 1),
                    source,
                });
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resume keeps the lines through its checkpoint's step byte for byte
    /// (here with a digit and spaces that JSON written again would drop),
    /// drops the later ones and a last line cut short, and appends after
    /// them.
    #[test]
    fn a_resume_keeps_the_earlier_lines_as_written() {
        let dir = std::env::temp_dir().join(format!("tessera-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let record = |step: usize| StepRecord {
            step,
            lr: 1e-3,
            loss: 0.1 * step as f64,
            pde: 0.0,
            ic: 0.0,
            bc: 0.0,
            data: 0.0,
            grad_norm: 1.0,
            lm_iterations_mean: 2.0,
            failed_solves: 0,
            solves: 1,
            seconds: 0.5,
            validation: None,
            stopped: None,
        };
        let as_written = |step: usize| line(&record(step)).unwrap().replace(":0.5", ": 0.50");
        let text = format!(
            "{}{}{}{{\"step\":4",
            as_written(1),
            as_written(2),
            as_written(3)
        );
        std::fs::write(&path, &text).unwrap();
        let mut log = MetricsLog::open(&path, Some(2)).unwrap();
        log.append(&record(3)).unwrap();
        let kept = std::fs::read_to_string(&path).unwrap();
        let expected = format!(
            "{}{}{}",
            as_written(1),
            as_written(2),
            line(&record(3)).unwrap()
        );
        assert_eq!(kept, expected);
        assert_eq!(read(&path).unwrap(), [record(1), record(2), record(3)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
