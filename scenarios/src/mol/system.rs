//! The semi-discrete system `du/dt = f(t, u)` the time integrator advances.

use std::sync::Arc;

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

    /// `∂f/∂u` at `(t, u)` as an operator, for a system whose Jacobian is
    /// cheap to apply but costly to factorise: the integrator then solves its
    /// stage systems `(I − hγJ) x = b` by preconditioned GMRES instead of a
    /// sparse LU, and never asks for [`MolSystem::sparsity`]. A 2-D spectral
    /// discretisation is the case: each point couples its whole row and
    /// column, and an LU of that pattern fills in (benches/README.md, "2-D
    /// spectral grids"); so is a 1-D spectral line of many points, whose
    /// dense LU costs `n³` (benches/README.md, "1-D spectral lines by
    /// GMRES"). `None` (the default): an assembled Jacobian.
    /// The integrator asks at the initial state which form to use, so a
    /// system that offers an operator there must offer one at every state.
    fn jacobian_operator(
        &self,
        t: f64,
        u: &[f64],
    ) -> Option<Result<Arc<dyn JacobianOperator + '_>, MolError>> {
        let _ = (t, u);
        None
    }
}

/// `J = ∂f/∂u` at one state, applied rather than stored
/// ([`MolSystem::jacobian_operator`]).
pub trait JacobianOperator: Send + Sync {
    /// `out = J x`.
    fn apply(&self, x: &[f64], out: &mut [f64]);

    /// Overwrites `x` with `P⁻¹x`, `P ≈ I − hγJ` for `hγ = hg`: a
    /// preconditioner, cheap to apply; the closer `P`, the fewer GMRES
    /// iterations. It must be linear and the same at every call.
    fn precondition(&self, hg: f64, x: &mut [f64]);
}
