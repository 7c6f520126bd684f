//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors from building, training, evaluating or saving a model from user input.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// A model or training setting is out of its valid range.
    #[error("invalid {key} = {value}: {reason}")]
    InvalidConfig {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// Array sizes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// NaN or infinite values where finite ones are required.
    #[error("{count} non-finite values in {what}")]
    NonFinite { what: &'static str, count: usize },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint is missing pieces or does not match the model.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    /// A safetensors file (a checkpoint) could not be encoded or decoded.
    #[error("{}: {source}", path.display())]
    Safetensors {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A run directory's `config.toml` is missing or not a valid scenario
    /// (the source names the file).
    #[error("the run's config: {source}")]
    RunConfig {
        path: PathBuf,
        /// Boxed: a scenario error is large, and this enum is every call's `Err`.
        #[source]
        source: Box<tessera_scenarios::ScenarioError>,
    },
    /// A JSON file of a run (a metrics line, the summary) could not be encoded
    /// or decoded; `line` is 1-based where the file has one record per line.
    #[error("{}{}: {source}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Json {
        path: PathBuf,
        line: Option<usize>,
        #[source]
        source: serde_json::Error,
    },
    /// Another run holds the run directory's lock (or held it and died: `stale`).
    #[error("{} is held by {holder}{}", path.display(), stale_hint(*stale))]
    RunDirLocked {
        path: PathBuf,
        holder: String,
        stale: bool,
    },
    /// A data file (`data.train_file`, `data.test_file`) holds fewer samples
    /// than the split asks for: named with the file and the key that asks,
    /// since the sample count and the file are set in different places.
    #[error(
        "{}: holds {found} sample(s), but {key} = {needed} asks for that many: lower {key} or name a file with more samples",
        path.display()
    )]
    DataFileTooShort {
        path: PathBuf,
        key: &'static str,
        needed: usize,
        found: usize,
    },
    /// A dataset whose grid is not the model's (another `t_max` or domain,
    /// or a finer grid that does not nest in it).
    #[error("dataset grid along {axis}: {reason}")]
    DatasetGrid { axis: String, reason: String },
    /// A trained model cannot be evaluated at a spatial resolution of
    /// `eval.resolutions` (a grid its modes do not fit, test data it does not
    /// divide, a scenario whose grid cannot be refined).
    #[error("evaluation at resolution {resolution}: {reason}")]
    Resolution { resolution: usize, reason: String },
    /// Whole trajectories were asked of samples that hold their initial
    /// conditions only ([`crate::data::Samples::initial_only`]).
    #[error(
        "these samples hold their initial conditions only (the training split of a run without a data loss): whole trajectories are not available"
    )]
    InitialConditionsOnly,
    /// A new run was started into a directory that already holds one;
    /// `resumable` where it holds a run's config, which a resume continues.
    #[error("run directory {} is not empty; {}", path.display(), not_empty_hint(path, *resumable))]
    RunDirNotEmpty { path: PathBuf, resumable: bool },
    /// A prediction kept for its gradient was handed to another model's
    /// backward pass ([`crate::embed::TrainedModel::backward`]).
    #[error(
        "this kept prediction was made by another model: differentiate it with the model that made it"
    )]
    ForeignForward,
    /// A multi-rank run cannot start or continue.
    #[error(transparent)]
    Parallel(#[from] crate::parallel::ParallelError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The scenario does not describe a valid PDE, grid or setting.
    #[error(transparent)]
    Scenario(#[from] tessera_scenarios::ScenarioError),
    /// The constraint layer rejected its input or could not differentiate a solve.
    #[error(transparent)]
    Experts(#[from] tessera_experts::ExpertsError),
    /// A PDE residual or linear row could not be evaluated.
    #[error(transparent)]
    Constraint(#[from] tessera_constraints::ConstraintError),
    /// The GPU could not be used (no driver, no NVRTC, a kernel or driver
    /// failure).
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Gpu(#[from] tessera_constraints::gpu::GpuError),
}

fn not_empty_hint(path: &Path, resumable: bool) -> String {
    if resumable {
        format!(
            "continue that run with `--resume {}` or start over in it with `--force`",
            path.display()
        )
    } else {
        "it holds no run to resume: start over in it with `--force` (which removes only a \
         run's files) or choose another directory"
            .to_owned()
    }
}

fn stale_hint(stale: bool) -> &'static str {
    if stale {
        "; that process no longer runs (a stale lock): pass --force (or --resume) to take it over"
    } else {
        "; wait for that run to end, choose another run directory, or delete the lock file if that run is known to be gone"
    }
}

impl SolverError {
    /// Whether the requested device is what failed: it cannot be used here
    /// (a build without the `cuda` feature, no driver, no such GPU), or it
    /// failed (a kernel that does not compile or launch).
    pub fn is_device_error(&self) -> bool {
        match self {
            Self::InvalidConfig { key, .. } => *key == "device",
            #[cfg(feature = "cuda")]
            Self::Gpu(_) => true,
            _ => false,
        }
    }

    /// An [`SolverError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
