//! Grid checks shared by the 1-D PDEs on a bounded interval.

use tessera_constraints::ConstraintError;
use tessera_meshes::Grid;

/// `(nt, nx)` of a `(t, x)` grid whose `x` axis is bounded (not periodic), as the
/// boundary rows of heat and diffusion–sorption need; `what` names the PDE's
/// expectation in the error.
pub(crate) fn bounded_tx(
    grid: &Grid,
    what: &'static str,
) -> Result<(usize, usize), ConstraintError> {
    if grid.ndim() != 2 || grid.axis(1).is_periodic() {
        return Err(ConstraintError::ShapeMismatch {
            what,
            expected: vec![2],
            got: vec![grid.ndim()],
        });
    }
    let dims = grid.shape().dims();
    Ok((dims[0], dims[1]))
}
