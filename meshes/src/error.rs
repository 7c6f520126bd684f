//! The crate's error type: every fallible constructor returns [`MeshError`].

/// Errors from building grids, operators, tiles and samples from user input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeshError {
    /// A size or count that must be positive (or at least some minimum) is not.
    #[error("{what} must be at least {min}, got {got}")]
    TooSmall {
        what: &'static str,
        min: usize,
        got: usize,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A floating-point parameter is NaN, infinite or out of its valid range.
    #[error("invalid {what}: {value} ({reason})")]
    InvalidValue {
        what: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// An axis index beyond the grid's dimension.
    #[error("axis {axis} out of range for a {ndim}-dimensional grid")]
    AxisOutOfRange { axis: usize, ndim: usize },
    /// An operation that needs a periodic axis was given a bounded one (or vice versa).
    #[error("axis {axis}: {reason}")]
    Periodicity { axis: usize, reason: &'static str },
}
