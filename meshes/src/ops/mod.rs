//! Linear operators on grid fields, each with an exact adjoint.
//!
//! The hard-constraint layer builds every PDE term as `A_j = D_j B` for a basis
//! `B` with `N` channels, and its backward pass needs `B̄ += D_jᵀ Ā_j`; so every
//! operator here implements both directions, and the tests check
//! `⟨D a, b⟩ = ⟨a, Dᵀ b⟩`.

use crate::Shape;

/// A linear map from grid fields to grid fields of the same shape, applied to
/// every channel independently.
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
}
