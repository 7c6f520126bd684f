//! The layout of a run directory, in one place so that `run`, `train`, `eval`
//! and `--resume` agree on it:
//!
//! ```text
//! RUN_DIR/config.toml              the scenario used (overrides applied)
//! RUN_DIR/metrics.jsonl            one JSON object per training step
//! RUN_DIR/checkpoint.safetensors   variables, Adam moments, step, extra state
//! RUN_DIR/checkpoint.previous.safetensors   the checkpoint before it
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
    /// used directory without `force` (one whose commands never reached
    /// training, which left only their provenance, is not used).
    pub fn claim(&self, claim: Claim) -> Result<RunLock, SolverError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SolverError::io(&self.root, e))?;
        let lock = RunLock::acquire(&self.lock(), claim.force || claim.resume)?;
        if claim.resume {
            return Ok(lock);
        }
        let entries = std::fs::read_dir(&self.root).map_err(|e| SolverError::io(&self.root, e))?;
        let mut used = false;
        for entry in entries {
            let path = entry.map_err(|e| SolverError::io(&self.root, e))?.path();
            used |= !self.holds_no_run(&path);
        }
        if used && !claim.force {
            return Err(SolverError::RunDirNotEmpty {
                path: self.root.clone(),
                resumable: self.config().exists(),
            });
        }
        if used {
            self.remove_run_files()?;
        }
        Ok(lock)
    }

    /// Makes the directory an evaluation's to write its summary and plots
    /// into: creates it and takes its lock, taking over a stale one. Refused
    /// while a run trains there: its summary would be of a checkpoint the
    /// training goes on from, and would pass for the finished run's.
    ///
    /// Errors: [`SolverError::RunDirLocked`] naming the holder.
    pub fn claim_to_evaluate(&self) -> Result<RunLock, SolverError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SolverError::io(&self.root, e))?;
        RunLock::acquire(&self.lock(), true)
    }

    /// Whether `path`, an entry of the directory, is one that a run which
    /// never reached its training leaves (a run that failed in its data
    /// generation, say): the lock, the provenance of the commands that
    /// tried, an empty `plots/`. A fresh start goes ahead beside those, and
    /// its own record joins the provenance.
    fn holds_no_run(&self, path: &Path) -> bool {
        let empty = |dir: &Path| std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
        *path == self.lock() || *path == self.provenance() || (*path == self.plots() && empty(path))
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
            self.previous_checkpoint(),
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

    /// The checkpoint before [`RunDir::checkpoint`], kept (with
    /// `training.keep_previous_checkpoint`) for a resume to fall back to.
    pub fn previous_checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.previous.safetensors")
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
    replace_keeping(path, None, write)
}

/// Like [`write_atomic_with`]; with `previous`, the file `path` held before
/// (if any) is then found at `previous`, replacing what that held.
///
/// Durable as well as atomic: the new file's bytes reach the disk before
/// the rename that publishes them, and the rename before this returns. A
/// rename alone orders nothing: after a power cut, file systems that delay
/// allocation (XFS; ext4 in some modes; many cluster file systems) may show
/// the new name over an empty or partial file. At every moment `path` names
/// a whole file: the old one keeps its name until the new one takes it, and
/// reaches `previous` through a second name (a hard link, or a copy where
/// the file system has no links).
pub fn replace_keeping(
    path: &Path,
    previous: Option<&Path>,
    write: impl FnOnce(&Path) -> Result<(), SolverError>,
) -> Result<(), SolverError> {
    let tmp = beside(path, ".tmp");
    if let Err(e) = write(&tmp).and_then(|()| sync_file(&tmp)) {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(previous) = previous {
        keep_as(path, previous)?;
    }
    std::fs::rename(&tmp, path).map_err(|e| SolverError::io(path, e))?;
    sync_directory_of(path);
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// Gives the file at `path` (if there is one) the name `previous` as well,
/// replacing what `previous` named, durably.
fn keep_as(path: &Path, previous: &Path) -> Result<(), SolverError> {
    let second = beside(previous, ".tmp");
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SolverError::io(&second, e)),
        _ => Ok(()),
    };
    gone(std::fs::remove_file(&second))?;
    match std::fs::hard_link(path, &second) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {
            std::fs::copy(path, &second).map_err(|e| SolverError::io(&second, e))?;
            sync_file(&second)?;
        }
    }
    std::fs::rename(&second, previous).map_err(|e| SolverError::io(previous, e))
}

/// Flushes a written file's bytes to the disk.
fn sync_file(path: &Path) -> Result<(), SolverError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| SolverError::io(path, e))
}

/// Flushes the directory entry of a renamed file to the disk. Best effort:
/// some file systems refuse to sync a directory, and on those the rename is
/// as durable as they make it.
fn sync_directory_of(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// Each replacement leaves the new bytes under the name and the old ones
    /// under `previous`; a failed write changes neither and leaves no
    /// temporary file; without `previous` nothing else is touched.
    #[test]
    fn a_replacement_keeps_the_file_before_it() {
        let dir = std::env::temp_dir().join(format!("tessera-replace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (path, previous) = (dir.join("c.bin"), dir.join("c.previous.bin"));
        let write = |text: &'static str| {
            move |tmp: &Path| std::fs::write(tmp, text).map_err(|e| SolverError::io(tmp, e))
        };
        replace_keeping(&path, Some(&previous), write("one")).unwrap();
        assert_eq!((read(&path), read(&previous)), (Some("one".into()), None));
        replace_keeping(&path, Some(&previous), write("two")).unwrap();
        replace_keeping(&path, Some(&previous), write("three")).unwrap();
        let both = (read(&path), read(&previous));
        assert_eq!(both, (Some("three".into()), Some("two".into())));

        let failed = replace_keeping(&path, Some(&previous), |tmp| {
            std::fs::write(tmp, "partial").unwrap();
            Err(SolverError::io(tmp, std::io::Error::other("disk full")))
        });
        assert!(failed.is_err());
        assert_eq!((read(&path), read(&previous)), both);
        replace_keeping(&path, None, write("four")).unwrap();
        assert_eq!(read(&previous), Some("two".into()));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["c.bin", "c.previous.bin"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
