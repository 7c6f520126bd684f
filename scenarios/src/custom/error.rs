//! Errors of a PDE definition file, each naming the file, the line and the
//! column.

use std::path::PathBuf;

use tessera_constraints::expr::{ExprError, Position};

/// What is wrong with a PDE definition, and where.
#[derive(Debug, thiserror::Error)]
pub enum CustomPdeError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or not the schema (unknown key, wrong type, missing key).
    #[error("{file}:{at}: {message}")]
    Toml {
        /// The file (or origin) name.
        file: String,
        /// Where the parser stopped.
        at: Position,
        /// The parser's explanation.
        message: String,
    },
    /// Several problems reading the schema, the unknown keys among them all
    /// named, each on its own line with its line and column (the header
    /// names the file alone: no one position stands for them all).
    #[error("{file}: {message}")]
    TomlSeveral {
        /// The file (or origin) name.
        file: String,
        /// The first problem's line and column.
        at: Position,
        /// The problems, one per line.
        message: String,
    },
    /// An expression is wrong (see [`ExprError`]; its position is in the file).
    #[error("{file}:{source}")]
    Expr {
        /// The file (or origin) name.
        file: String,
        /// What is wrong inside the expression.
        #[source]
        source: ExprError,
    },
    /// A value is well-formed but not acceptable: an unknown operator, axis or
    /// stencil, a shape mismatch, a missing boundary row, a NaN parameter, a
    /// non-linear condition row.
    #[error("{file}:{at}: {message}")]
    Invalid {
        /// The file (or origin) name.
        file: String,
        /// The line and column of the offending value.
        at: Position,
        /// What is wrong.
        message: String,
    },
    /// A valid definition that the method-of-lines reference solver cannot
    /// take (a system, a boundary row reading `u0`, …; see
    /// [`crate::custom::CustomPde::mol`]).
    #[error("{file}:{at}: the method of lines cannot solve this definition: {message}")]
    Unsupported {
        /// The file (or origin) name.
        file: String,
        /// The line and column of the term, row or residual.
        at: Position,
        /// Why not.
        message: String,
    },
}

impl CustomPdeError {
    /// The line and column the error points at (none for I/O errors).
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::Io { .. } => None,
            Self::Toml { at, .. }
            | Self::TomlSeveral { at, .. }
            | Self::Invalid { at, .. }
            | Self::Unsupported { at, .. } => Some(*at),
            Self::Expr { source, .. } => Some(source.position()),
        }
    }
}
