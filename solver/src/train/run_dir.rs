//! The layout of a run directory, in one place so that `run`, `train`, `eval`
//! and `--resume` agree on it:
//!
//! ```text
//! RUN_DIR/config.toml              the scenario used (overrides applied)
//! RUN_DIR/metrics.jsonl            one JSON object per training step
//! RUN_DIR/checkpoint.safetensors   variables, Adam moments, step, extra state
//! RUN_DIR/summary.json             the evaluation
//! RUN_DIR/plots/*.png              heat maps and the loss curve
//! RUN_DIR/.lock                    held while a run uses the directory
//! ```
//!
//! No run is lost to another: [`RunDir::claim`] takes the directory's lock
//! ([`RunLock`]) and refuses to start a new run into a directory that already
//! holds one unless the caller resumes it or forces a fresh start.

use std::path::{Path, PathBuf};

use tessera_scenarios::Scenario;

use super::metrics::{self, StepRecord};
use super::run_lock::RunLock;
use crate::SolverError;

/// How a run means to use its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claim {
    /// Continue the run already in the directory.
    pub resume: bool,
    /// Start afresh in a non-empty directory (its run files are removed).
    /// Both a resume and a forced start take over a stale lock.
    pub force: bool,
}

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

    /// Makes the directory this process's: creates it, takes its lock and,
    /// for a fresh start, checks that it holds no earlier run (with
    /// `claim.force`, removes the earlier run's files instead). Keep the
    /// returned lock alive for as long as the run writes into the directory.
    ///
    /// Errors: [`SolverError::RunDirLocked`] naming the holder when another run
    /// holds the lock; [`SolverError::RunDirNotEmpty`] for a fresh start into a
    /// used directory without `force`.
    pub fn claim(&self, claim: Claim) -> Result<RunLock, SolverError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SolverError::io(&self.root, e))?;
        let lock = RunLock::acquire(&self.lock(), claim.force || claim.resume)?;
        if claim.resume {
            return Ok(lock);
        }
        let entries = std::fs::read_dir(&self.root).map_err(|e| SolverError::io(&self.root, e))?;
        let mut used = false;
        for entry in entries {
            let entry = entry.map_err(|e| SolverError::io(&self.root, e))?;
            used |= entry.path() != self.lock();
        }
        if used && !claim.force {
            return Err(SolverError::RunDirNotEmpty {
                path: self.root.clone(),
            });
        }
        if used {
            self.remove_run_files()?;
        }
        Ok(lock)
    }

    /// Removes what a run writes (and nothing else the user may keep there).
    fn remove_run_files(&self) -> Result<(), SolverError> {
        let gone = |r: std::io::Result<()>, path: PathBuf| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SolverError::io(path, e)),
            _ => Ok(()),
        };
        for file in [
            self.config(),
            self.metrics(),
            self.checkpoint(),
            self.summary(),
            self.provenance(),
        ] {
            gone(std::fs::remove_file(&file), file)?;
        }
        gone(std::fs::remove_dir_all(self.plots()), self.plots())
    }

    /// The lock file.
    pub fn lock(&self) -> PathBuf {
        self.root.join(".lock")
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

    /// The record of each command that wrote here: which build, on which
    /// machine, from which command line (`tessera`'s provenance).
    pub fn provenance(&self) -> PathBuf {
        self.root.join("provenance.jsonl")
    }

    /// The plots folder.
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// Saves the scenario as `config.toml` (atomically).
    ///
    /// The config records the experiment, not the machine: `device` is left
    /// out, so a run trained on a GPU is evaluated, resumed or embedded on any
    /// machine (`--device` chooses again).
    pub fn write_config(&self, scenario: &Scenario) -> Result<(), SolverError> {
        let experiment = Scenario {
            device: tessera_scenarios::Device::Cpu,
            ..scenario.clone()
        };
        write_atomic(&self.config(), experiment.to_toml_string().as_bytes())
    }

    /// Reads `config.toml` back, validated like any scenario file, with the
    /// values older runs used for settings added since
    /// ([`Scenario::from_run_config`]).
    pub fn read_config(&self) -> Result<Scenario, SolverError> {
        Scenario::from_run_config(self.config()).map_err(|source| SolverError::RunConfig {
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
