//! The layout of a run directory, in one place so that `run`, `train`, `eval`
//! and `--resume` agree on it:
//!
//! ```text
//! RUN_DIR/config.toml              the scenario used (overrides applied)
//! RUN_DIR/metrics.jsonl            one JSON object per training step
//! RUN_DIR/checkpoint.safetensors   variables, Adam moments, step, extra state
//! RUN_DIR/summary.json             the evaluation
//! RUN_DIR/plots/*.png              heat maps and the loss curve
//! ```

use std::path::{Path, PathBuf};

use tessera_scenarios::Scenario;

use super::metrics::{self, StepRecord};
use crate::SolverError;

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directory (and `plots/`) if needed.
    pub fn create(&self) -> Result<(), SolverError> {
        let plots = self.plots();
        std::fs::create_dir_all(&plots).map_err(|e| SolverError::io(plots, e))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The scenario file used by the run.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The per-step metrics.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// Every record of `metrics.jsonl`, in step order.
    pub fn read_metrics(&self) -> Result<Vec<StepRecord>, SolverError> {
        metrics::read(&self.metrics())
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.safetensors")
    }

    /// The evaluation summary.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// The plots folder.
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// Saves the scenario as `config.toml` (atomically).
    pub fn write_config(&self, scenario: &Scenario) -> Result<(), SolverError> {
        write_atomic(&self.config(), scenario.to_toml_string().as_bytes())
    }

    /// Reads `config.toml` back, validated like any scenario file.
    pub fn read_config(&self) -> Result<Scenario, SolverError> {
        Scenario::from_file(self.config()).map_err(|source| SolverError::RunConfig {
            path: self.config(),
            source: Box::new(source),
        })
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename, so a crash never leaves a partial file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SolverError> {
    write_atomic_with(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| SolverError::io(tmp, e))
    })
}

/// Like [`write_atomic`], with `write` producing the temporary file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), SolverError>,
) -> Result<(), SolverError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    if let Err(e) = write(&tmp) {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| SolverError::io(path, e))
}
