//! Linear operators on grid fields, each with an exact adjoint.
//!
//! The hard-constraint layer builds every PDE term as `A_j = D_j B` for a basis
//! `B` with `N` channels, and its backward pass needs `B̄ += D_jᵀ Ā_j`; so every
//! operator here implements both directions, and the tests check
//! `⟨D a, b⟩ = ⟨a, Dᵀ b⟩`.
//!
//! | file | holds |
//! |---|---|
//! | [`axis_matrix`] | a sparse `n × n` matrix streamed along one axis (the FD kernel) |
//! | [`fd`] | finite differences: the reference (numpy) scheme, a second-order one, periodic |
//! | [`spectral`] | Fourier multipliers on periodic axes: derivatives, Laplacian, its inverse |
//! | [`identity`], [`compose`], [`combination`], [`scale`] | combinators for building terms |

pub mod axis_matrix;
pub mod combination;
pub mod compose;
pub mod fd;
pub mod identity;
pub mod scale;
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
