//! The crate's error type: every fallible constructor (and
//! [`crate::SparseRows::push_row`]) returns [`MeshError`].

/// Errors from building grids, operators, tiles, samples and sparse rows from
/// user input.
///
/// Each variant carries the offending values so that a caller (or a config-file
/// user) can see what was wrong without reading the source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeshError {
    /// A size or count that must be positive (or at least some minimum) is not.
    #[error("{what} must be at least {min}, got {got}")]
    TooSmall {
        /// What was counted (`"axis length"`, `"number of operators"`, …).
        what: &'static str,
        /// The smallest accepted value.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which argument had the wrong shape.
        what: &'static str,
        /// The shape required.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
    /// A floating-point parameter is NaN, infinite or out of its valid range.
    #[error("invalid {what}: {value:?} ({reason})")]
    InvalidValue {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An axis index beyond the grid's dimension.
    #[error("axis {axis} out of range for a {ndim}-dimensional grid")]
    AxisOutOfRange {
        /// The axis asked for.
        axis: usize,
        /// The number of axes the grid has.
        ndim: usize,
    },
    /// An operation that needs a periodic axis was given a bounded one (or vice versa).
    #[error("axis {axis}: {reason}")]
    Periodicity {
        /// The offending axis.
        axis: usize,
        /// What was expected of it.
        reason: &'static str,
    },
    /// A list of axes that must be strictly increasing (no repeats) is not.
    #[error("axes {axes:?} must be strictly increasing")]
    UnorderedAxes {
        /// The axes given.
        axes: Vec<usize>,
    },
    /// A per-axis list (a tile split, a multi-index) has the wrong number of entries.
    #[error("{what} needs one entry per grid axis: expected {expected}, got {got}")]
    WrongAxisCount {
        /// Which list.
        what: &'static str,
        /// The grid's number of axes.
        expected: usize,
        /// The number of entries given.
        got: usize,
    },
    /// A tile split asks for more tiles along an axis than the axis has points.
    #[error("cannot split axis {axis} of {points} points into {tiles} tiles")]
    TooManyTiles {
        /// The axis being split.
        axis: usize,
        /// The number of tiles asked for along it.
        tiles: usize,
        /// The number of points on it.
        points: usize,
    },
    /// A tile index beyond the tiling.
    #[error("tile {tile} out of range for a tiling of {n_tiles} tiles")]
    TileOutOfRange {
        /// The tile asked for.
        tile: usize,
        /// The number of tiles.
        n_tiles: usize,
    },
    /// A grid point index beyond the grid.
    #[error("point {point} out of range for a grid of {n_points} points")]
    PointOutOfRange {
        /// The point asked for.
        point: usize,
        /// The number of points in the grid.
        n_points: usize,
    },
    /// An operator whose rows are needed as sparse weights is not local (its rows
    /// span the whole grid, e.g. a spectral derivative).
    #[error("{what} is not local: its rows span the whole grid")]
    NotLocal {
        /// Which operator was given.
        what: &'static str,
    },
    /// More distinct sample points requested from a tile than it holds.
    #[error("cannot sample {requested} distinct points from tile {tile} of {available} points")]
    TooManySamples {
        /// The tile sampled.
        tile: usize,
        /// Points requested.
        requested: usize,
        /// Points in the tile.
        available: usize,
    },
}
