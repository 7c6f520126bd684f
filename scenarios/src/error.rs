//! The crate's error type: every fallible function taking user input (scenario
//! files, `--set` overrides, dataset files, solver settings) returns
//! [`ScenarioError`].

use std::path::{Path, PathBuf};

/// Errors from reading scenarios and datasets and from running reference solvers.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A scenario file (or an override) is not valid TOML or does not match the
    /// schema; `message` is the parser's text, which quotes the offending key
    /// and its line.
    #[error("{origin}: {message}")]
    ConfigParse {
        /// The file name (or `--set key=value` text) the config came from.
        origin: String,
        /// The parser's explanation.
        message: String,
    },
    /// A config value is well-formed but not acceptable (out of range, or
    /// inconsistent with another value).
    #[error("{origin}: invalid `{key}` = {value}: {reason}")]
    ConfigInvalid {
        /// The file name the config came from.
        origin: String,
        /// Dotted key of the offending value.
        key: String,
        /// The offending value as text.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Several config values are not acceptable: each one a validation found,
    /// in the order checked, so that a user mends them in one round.
    #[error("{origin}: {} invalid settings:{}", .settings.len(), one_per_line(.settings))]
    ConfigInvalidSeveral {
        /// The file name (or `--set` overrides) the config came from.
        origin: String,
        /// The rejected settings.
        settings: Vec<InvalidSetting>,
    },
    /// A `--set` override is not of the form `dotted.key=value`, or names a key
    /// the schema does not have.
    #[error("override `{text}`: {reason}")]
    Override {
        /// The override as given.
        text: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Several `--set` overrides are rejected, each an
    /// [`ScenarioError::Override`], in the order given.
    #[error("{} overrides rejected:{}", .errors.len(), one_error_per_line(.errors))]
    OverridesRejected {
        /// The overrides' errors.
        errors: Vec<ScenarioError>,
    },
    /// A dataset file's extension names no supported format (or one whose cargo
    /// feature is off).
    #[error("{path}: unsupported dataset format ({reason})")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Which formats are supported in this build.
        reason: String,
    },
    /// A dataset file is malformed: unreadable container, missing tensor or
    /// attribute, wrong dtype.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor or attribute.
        reason: String,
    },
    /// Array sizes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which array.
        what: String,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A value in data (an initial condition, a trajectory, a coordinate) is NaN
    /// or infinite.
    #[error("non-finite value {value} in {what} at flat index {index}")]
    NonFinite {
        /// Which array.
        what: String,
        /// Flat index of the first offending entry.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A numeric argument (tolerance, step, physical constant) is NaN, infinite or
    /// outside its valid range.
    #[error("invalid {what}: {value:?} ({reason})")]
    InvalidValue {
        /// Which argument.
        what: &'static str,
        /// The value.
        value: f64,
        /// The valid range.
        reason: &'static str,
    },
    /// A scenario asks for something a component does not provide (e.g. a
    /// reference solver for a PDE that has none).
    #[error("{what} is not available for {pde}")]
    Unsupported {
        /// The feature requested.
        what: &'static str,
        /// The PDE kind.
        pde: String,
    },
    /// A reference solver stopped without reaching the requested accuracy.
    #[error("{solver} failed at t = {t}: {reason}")]
    SolverFailed {
        /// Which solver.
        solver: &'static str,
        /// Time reached.
        t: f64,
        /// Why it stopped.
        reason: String,
    },
    /// A PDE defined in TOML is malformed (the error names the definition
    /// file, the line and the column).
    #[error(transparent)]
    CustomPde(Box<crate::custom::CustomPdeError>),
    /// An error from the mesh layer (grids).
    #[error(transparent)]
    Mesh(#[from] tessera_meshes::MeshError),
    /// The method-of-lines reference solver could not set up or integrate a
    /// PDE (for a dataset: on sample `sample`).
    #[error("method of lines{}: {source}", sample.map(|i| format!(", sample {i}")).unwrap_or_default())]
    Mol {
        /// The dataset sample, where there is one.
        sample: Option<usize>,
        /// What went wrong, typed.
        #[source]
        source: crate::mol::MolError,
    },
}

impl From<crate::mol::MolError> for ScenarioError {
    fn from(source: crate::mol::MolError) -> Self {
        Self::Mol {
            sample: None,
            source,
        }
    }
}

impl ScenarioError {
    /// An [`ScenarioError::Io`] error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// The same error naming the file it concerns: data checks
    /// ([`ScenarioError::ShapeMismatch`], [`ScenarioError::NonFinite`]) name
    /// only the array, since they also run on data in memory; a reader adds
    /// the file so that the user knows which one to fix.
    pub(crate) fn in_file(self, path: &Path) -> Self {
        match self {
            Self::ShapeMismatch {
                what,
                expected,
                got,
            } => Self::ShapeMismatch {
                what: format!("{}: {what}", path.display()),
                expected,
                got,
            },
            Self::NonFinite { what, index, value } => Self::NonFinite {
                what: format!("{}: {what}", path.display()),
                index,
                value,
            },
            other => other,
        }
    }

    /// A [`ScenarioError::Format`] error for `path`.
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// One rejected setting of a [`ScenarioError::ConfigInvalidSeveral`]: what a
/// [`ScenarioError::ConfigInvalid`] says but its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidSetting {
    /// Dotted key of the offending value.
    pub key: String,
    /// The offending value as text.
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` = {}: {}", self.key, self.value, self.reason)
    }
}

/// `settings` one per line, indented under the count.
fn one_per_line(settings: &[InvalidSetting]) -> String {
    settings.iter().map(|s| format!("\n  {s}")).collect()
}

/// `errors` one per line, indented under the count.
fn one_error_per_line(errors: &[ScenarioError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
