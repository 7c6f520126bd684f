//! The semi-discrete system `du/dt = f(t, u)` the time integrator advances.

use crate::mol::MolError;

/// An ODE system from a spatial discretisation: what [`crate::mol::integrate`]
/// needs, independent of how the PDE was defined.
pub trait MolSystem: Sync {
    /// Number of unknowns.
    fn len(&self) -> usize;

    /// Whether there are no unknowns.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `du_dt = f(t, u)`. A non-finite entry is not an error here (a trial
    /// Newton iterate may leave the domain where `f` is finite): the integrator
    /// then cuts the step. Errors are reserved for definitions that cannot be
    /// integrated at all (see [`MolError::SingularTimeCoefficient`]).
    fn rhs(&self, t: f64, u: &[f64], du_dt: &mut [f64]) -> Result<(), MolError>;

    /// For each unknown `i`, the unknowns `f_i` may depend on (sorted, without
    /// repeats): the sparsity of `∂f/∂u`, from which the integrator builds a
    /// column-coloured finite-difference Jacobian.
    fn sparsity(&self) -> Vec<Vec<usize>>;

    /// `∂f/∂u` at `(t, u)` as values aligned with `rows` (the
    /// [`MolSystem::sparsity`] pattern with each row's diagonal added,
    /// sorted), for a system that can assemble it more cheaply than the
    /// integrator's coloured differences (one evaluation of `f` per colour);
    /// `None` (the default) leaves it to them.
    fn jacobian(
        &self,
        t: f64,
        u: &[f64],
        rows: &[Vec<usize>],
    ) -> Option<Result<Vec<Vec<f64>>, MolError>> {
        let _ = (t, u, rows);
        None
    }
}
