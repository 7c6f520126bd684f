//! The crate's error type.

/// Errors from building or solving constraint problems from user input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConstraintError {
    /// Array sizes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A parameter is NaN, infinite or outside its valid range.
    #[error("invalid {what}: {value:?} ({reason})")]
    InvalidValue {
        what: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// An index (point, term, row) is out of range.
    #[error("{what} index {index} out of range (< {len})")]
    IndexOutOfRange {
        what: &'static str,
        index: usize,
        len: usize,
    },
    /// An error from the mesh layer (operators, grids).
    #[error(transparent)]
    Mesh(#[from] tessera_meshes::MeshError),
    /// Data that must be finite (NaN or infinite) is not.
    #[error("non-finite values in {what}")]
    NonFinite { what: &'static str },
    /// A linear system is singular in floating point.
    #[error("singular {what}")]
    Singular { what: &'static str },
    /// A derivative the caller asked for that the PDE does not provide.
    #[error("no derivative with respect to {what}")]
    NoDerivative { what: &'static str },
}
