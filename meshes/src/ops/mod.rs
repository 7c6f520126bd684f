//! Linear operators on grid fields, each with an exact adjoint.
//!
//! The hard-constraint layer builds every PDE term as `A_j = D_j B` for a basis
//! `B` with `N` channels, and its backward pass needs `B̄ += D_jᵀ Ā_j`; so every
//! operator here implements both directions, and the tests check
//! `⟨D a, b⟩ = ⟨a, Dᵀ b⟩`. Experts need `D_j B` only at their sampled points:
//! [`LinearOperator::apply_at`] evaluates those rows alone where the operator is
//! local (finite differences, identity, scaling and their combinations), and
//! [`LinearOperator::add_row_at`] hands out those rows' weights, which
//! [`sparse_rows::SparseRows`] packs into a matrix a GPU kernel applies.
//!
//! | file | holds |
//! |---|---|
//! | [`axis_matrix`] | a sparse `n × n` matrix streamed along one axis (the FD kernel) |
//! | [`fd`] | finite differences: the reference (numpy) scheme, a second-order one, periodic |
//! | [`spectral`] | Fourier multipliers on periodic axes: derivatives, Laplacian, its inverse |
//! | [`identity`], [`compose`], [`combination`], [`scale`] | combinators for building terms |
//! | [`center_scale`] | each level's mean removed and the level scaled (a model form) |
//! | [`sparse_rows`] | rows of local operators at chosen points as a CSR matrix |

pub mod axis_matrix;
pub mod center_scale;
pub mod combination;
pub mod compose;
pub mod fd;
pub mod identity;
pub mod scale;
pub mod sparse_rows;
pub mod spectral;

use crate::Shape;

/// A linear map from grid fields to grid fields of the same shape, applied to
/// every channel independently.
///
/// Fields are row-major `[t, x, (y), channel]` slices of `shape().len() * channels`
/// values. Implementations take `&self` and allocate whatever scratch they need per
/// call, so one operator can be shared (`Arc<dyn LinearOperator>`) by all experts and
/// threads; they never parallelise internally, because callers already parallelise
/// across samples and experts.
pub trait LinearOperator: Send + Sync + std::fmt::Debug {
    /// The point shape of the fields this operator acts on.
    fn shape(&self) -> &Shape;

    /// `out = D · input` for a field with `channels` channels (channel fastest).
    ///
    /// # Panics
    /// If `input` or `out` does not hold `shape().len() * channels` values.
    fn apply(&self, input: &[f64], channels: usize, out: &mut [f64]);

    /// `out = Dᵀ · input`, the exact adjoint of [`LinearOperator::apply`] under the
    /// plain Euclidean inner product of the flattened fields.
    ///
    /// # Panics
    /// As [`LinearOperator::apply`].
    fn apply_adjoint(&self, input: &[f64], channels: usize, out: &mut [f64]);

    /// Rows `points` of `D · input`: row `i` (the value at grid point `points[i]`,
    /// `channels` values) is written to `out[i * stride .. i * stride + channels]`;
    /// the other entries of `out` are untouched.
    ///
    /// Why: a mixture of experts needs the terms `D_j B` only at its sampled
    /// points, and writing them with a stride puts the rows of several terms
    /// straight into one interleaved `[points, terms, channels]` block. Points may
    /// come in any order and repeat. Local operators (see
    /// [`LinearOperator::is_local`]) evaluate only the requested rows; the default
    /// applies `D` to the whole field and copies the rows out.
    ///
    /// # Panics
    /// If `input` does not hold `shape().len() * channels` values, `stride` is
    /// below `channels`, `out` is too short for the last row, or a point is not
    /// below `shape().len()`.
    #[track_caller]
    fn apply_at(
        &self,
        input: &[f64],
        channels: usize,
        points: &[usize],
        out: &mut [f64],
        stride: usize,
    ) {
        check_point_rows(self.shape(), input, channels, points, out, stride);
        let full = self.apply_to_vec(input, channels);
        gather_rows(&full, channels, points, out, stride);
    }

    /// Whether [`LinearOperator::apply_at`] costs in proportion to the number of
    /// points (each row reads a bounded neighbourhood of its point) rather than a
    /// full-grid apply. Callers that evaluate a non-local operator at many point
    /// sets apply it once to the whole field and gather its rows instead.
    fn is_local(&self) -> bool {
        false
    }

    /// Adds `scale` times row `point` of `D` to `row` as `(column, weight)` pairs
    /// (columns are flat grid indices; repeats allowed, the caller merges them).
    /// Returns false, adding nothing, when the operator is not local; returns true
    /// exactly when [`LinearOperator::is_local`] does.
    ///
    /// Why: a GPU builds the experts' term rows `D_j B` at their sampled points
    /// from these weights alone (see [`sparse_rows::SparseRows`]), without running
    /// the operator; a non-local row would be as long as the grid, so those
    /// operators decline.
    ///
    /// # Panics
    /// Local operators panic if `point` is not below `shape().len()`.
    fn add_row_at(&self, _point: usize, _scale: f64, _row: &mut Vec<(usize, f64)>) -> bool {
        false
    }

    /// `D · input` into a new vector: convenient where the output is not reused.
    ///
    /// # Panics
    /// As [`LinearOperator::apply`].
    #[track_caller]
    fn apply_to_vec(&self, input: &[f64], channels: usize) -> Vec<f64> {
        let mut out = vec![0.0; input.len()];
        self.apply(input, channels, &mut out);
        out
    }

    /// `Dᵀ · input` into a new vector.
    ///
    /// # Panics
    /// As [`LinearOperator::apply`].
    #[track_caller]
    fn apply_adjoint_to_vec(&self, input: &[f64], channels: usize) -> Vec<f64> {
        let mut out = vec![0.0; input.len()];
        self.apply_adjoint(input, channels, &mut out);
        out
    }
}

/// Checks the field lengths every `apply` receives: one shared message for the
/// programmer error of passing a field of the wrong size.
///
/// # Panics
/// If `input` or `out` does not hold `shape.len() * channels` values.
#[track_caller]
pub(crate) fn check_field_lengths(shape: &Shape, input: &[f64], channels: usize, out: &[f64]) {
    let expected = shape.len() * channels;
    assert!(
        input.len() == expected && out.len() == expected,
        "field lengths {} (input) and {} (output) do not match shape {:?} with {channels} channels ({expected} values)",
        input.len(),
        out.len(),
        shape.dims(),
    );
}

/// Rows `points` of a field (`channels` values per point) copied to
/// `out[i * stride ..]`, as [`LinearOperator::apply_at`] lays them out: the
/// identity's `apply_at`, and how callers read rows of a field they applied a
/// non-local operator to once.
///
/// # Panics
/// If `field`'s length is not a multiple of `channels`, or as
/// [`LinearOperator::apply_at`] for `stride`, `out` and the points.
#[track_caller]
pub fn gather_rows(
    field: &[f64],
    channels: usize,
    points: &[usize],
    out: &mut [f64],
    stride: usize,
) {
    if channels == 0 {
        return;
    }
    assert!(
        field.len().is_multiple_of(channels),
        "field of {} values is not a whole number of {channels}-channel points",
        field.len()
    );
    check_point_rows(
        &Shape::new(&[field.len() / channels]),
        field,
        channels,
        points,
        out,
        stride,
    );
    for (i, &p) in points.iter().enumerate() {
        out[i * stride..][..channels].copy_from_slice(&field[p * channels..][..channels]);
    }
}

/// Checks the arguments of [`LinearOperator::apply_at`]: one shared message for
/// each programmer error.
///
/// # Panics
/// If `input` does not hold `shape.len() * channels` values, `stride < channels`,
/// `out` cannot hold row `points.len() − 1`, or a point is out of range.
#[track_caller]
pub(crate) fn check_point_rows(
    shape: &Shape,
    input: &[f64],
    channels: usize,
    points: &[usize],
    out: &[f64],
    stride: usize,
) {
    let expected = shape.len() * channels;
    assert!(
        input.len() == expected,
        "input field of {} values does not match shape {:?} with {channels} channels ({expected} values)",
        input.len(),
        shape.dims(),
    );
    assert!(
        stride >= channels,
        "row stride {stride} is below the {channels} channels of a row"
    );
    if let Some(last) = points.len().checked_sub(1) {
        let needed = last * stride + channels;
        assert!(
            out.len() >= needed,
            "output of {} values cannot hold {} rows of {channels} values at stride {stride} ({needed} needed)",
            out.len(),
            points.len(),
        );
    }
    for &p in points {
        check_point(shape, p);
    }
}

/// Checks one point of a row request: the shared message of
/// [`LinearOperator::apply_at`] and [`LinearOperator::add_row_at`].
///
/// # Panics
/// If `point` is not below `shape.len()`.
#[track_caller]
pub(crate) fn check_point(shape: &Shape, point: usize) {
    assert!(
        point < shape.len(),
        "point {point} out of range for a grid of {} points",
        shape.len()
    );
}

/// Checks that an operator built elsewhere acts on the expected shape; used by the
/// combinators, whose parts must all act on one grid.
pub(crate) fn check_same_shape(
    what: &'static str,
    expected: &Shape,
    got: &Shape,
) -> Result<(), crate::MeshError> {
    if expected == got {
        Ok(())
    } else {
        Err(crate::MeshError::ShapeMismatch {
            what,
            expected: expected.dims().to_vec(),
            got: got.dims().to_vec(),
        })
    }
}

/// Checks weights an operator multiplies by: `expected` of them, all finite.
///
/// Errors: [`crate::MeshError::ShapeMismatch`] naming `what` for a wrong
/// count, [`crate::MeshError::InvalidValue`] naming `one` for the first NaN or
/// infinity.
pub(crate) fn check_weights(
    what: &'static str,
    one: &'static str,
    weights: &[f64],
    expected: usize,
) -> Result<(), crate::MeshError> {
    if weights.len() != expected {
        return Err(crate::MeshError::ShapeMismatch {
            what,
            expected: vec![expected],
            got: vec![weights.len()],
        });
    }
    match weights.iter().find(|w| !w.is_finite()) {
        Some(&bad) => Err(crate::MeshError::InvalidValue {
            what: one,
            value: bad,
            reason: "must be finite",
        }),
        None => Ok(()),
    }
}
