//! A solve kept for its backward pass: `tessera_constraint_forward` solves as
//! `tessera_constraint_solve` does and returns a handle holding the solved
//! problems (and a copy of the basis), so `tessera_forward_backward` (and
//! `tessera_forward_backward_ic`, which differentiates in the initial
//! conditions too) runs the implicit-function-theorem pass without solving
//! again. A training loop
//! that differentiates every step pays one solve per step instead of two.

use std::sync::Arc;

use tessera_solver::embed::Forward;

use crate::args::{expect_len, input, output, write_handle};
use crate::constraint::{Layer, SolveCall, TesseraConstraint};
use crate::handles::Table;
use crate::solve_status::TesseraSolveStatus;
use crate::status::{CallError, TesseraStatus, guard};

/// An opaque handle to a kept forward pass (never dereferenced by the
/// library: see the header's notes on handles).
pub struct TesseraForward {
    _opaque: [u8; 0],
}

/// A forward pass with what its backward pass reads. It holds its layer, so
/// freeing the layer's handle first is allowed.
struct Kept {
    layer: Arc<Layer>,
    forward: Forward,
    basis: Vec<f64>,
}

static FORWARDS: Table<Kept> = Table::new("forward");

/// `tessera_constraint_solve` (the same arguments and outputs, the same
/// results), and a new handle in `*out` that keeps the solve for
/// `tessera_forward_backward`. It holds the solved problems (their term rows
/// at the sampled points) and a copy of `basis` until
/// `tessera_forward_free`.
///
/// # Safety
/// Each pointer NULL or valid for its length; outputs must not overlap
/// inputs; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_constraint_forward(
    layer: *const TesseraConstraint,
    basis: *const f64,
    n_basis_values: usize,
    n_basis: usize,
    ic: *const f64,
    n_ic: usize,
    u_out: *mut f64,
    n_u: usize,
    weights_out: *mut f64,
    n_weights: usize,
    status_out: *mut TesseraSolveStatus,
    n_status: usize,
    out: *mut *mut TesseraForward,
) -> TesseraStatus {
    guard(|| {
        if out.is_null() {
            return Err(CallError::new(TesseraStatus::NullPointer, "`out` is NULL"));
        }
        let call = SolveCall {
            layer,
            basis,
            n_basis_values,
            n_basis,
            ic,
            n_ic,
            u_out,
            n_u,
            weights_out,
            n_weights,
            status_out,
            n_status,
        };
        // SAFETY: the caller's contract.
        let solved = unsafe { call.run() }?;
        let key = FORWARDS.insert(Kept {
            layer: solved.layer,
            forward: solved.forward,
            basis: solved.basis.to_vec(),
        });
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { write_handle(out, key) };
        Ok(())
    })
}

/// The backward pass of a kept forward pass: given `u_bar = ∂L/∂u`
/// (`n_u_bar = batch · field_len` values, `[batch][T][X](/[Y])`), writes
/// `∂L/∂basis` (`n_basis_bar = n_basis_values` of the forward call, laid out
/// like its `basis`) to `basis_bar_out`. The same values as
/// `tessera_constraint_backward` with the forward call's `basis` and `ic`,
/// without solving again. A forward pass may be differentiated any number of
/// times, from any thread.
///
/// # Safety
/// Each pointer NULL or valid for its length; `basis_bar_out` must not overlap
/// `u_bar`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_forward_backward(
    forward: *const TesseraForward,
    u_bar: *const f64,
    n_u_bar: usize,
    basis_bar_out: *mut f64,
    n_basis_bar: usize,
) -> TesseraStatus {
    guard(|| {
        let kept = FORWARDS.get(forward)?;
        // SAFETY (both): the caller's contract.
        let u_bar = unsafe { input(u_bar, n_u_bar, "u_bar") }?;
        let out = unsafe { output(basis_bar_out, n_basis_bar, "basis_bar_out") }?;
        let projection = &kept.layer.projection;
        expect_len(
            "u_bar",
            n_u_bar,
            kept.forward.batch() * projection.field_len(),
        )?;
        expect_len("basis_bar_out", n_basis_bar, kept.basis.len())?;
        let gradient = projection.backward(&kept.forward, &kept.basis, u_bar, &kept.layer.pool)?;
        out.copy_from_slice(&gradient);
        Ok(())
    })
}

/// `tessera_forward_backward`, differentiating in the initial conditions
/// too: writes `∂L/∂basis` to `basis_bar_out` (as `tessera_forward_backward`:
/// the same bits on the CPU; where the solves run on a GPU, whose pull-back
/// this pass runs on the host, the same values to round-off) and `∂L/∂ic` to
/// `ic_bar_out` (`n_ic_bar = n_ic` of the
/// forward call, laid out like its `ic`). An initial condition reaches the
/// field through the rows it builds (right-hand sides, coefficients such as
/// diffusion–sorption's `1/u0`) and through the offset of models that build it
/// in (Navier–Stokes); every scenario PDE provides this derivative. For
/// inverse problems and data assimilation.
///
/// # Safety
/// Each pointer NULL or valid for its length; the outputs must not overlap
/// each other or `u_bar`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_forward_backward_ic(
    forward: *const TesseraForward,
    u_bar: *const f64,
    n_u_bar: usize,
    basis_bar_out: *mut f64,
    n_basis_bar: usize,
    ic_bar_out: *mut f64,
    n_ic_bar: usize,
) -> TesseraStatus {
    guard(|| {
        let kept = FORWARDS.get(forward)?;
        // SAFETY (all three): the caller's contract.
        let u_bar = unsafe { input(u_bar, n_u_bar, "u_bar") }?;
        let basis_out = unsafe { output(basis_bar_out, n_basis_bar, "basis_bar_out") }?;
        let ic_out = unsafe { output(ic_bar_out, n_ic_bar, "ic_bar_out") }?;
        let projection = &kept.layer.projection;
        let batch = kept.forward.batch();
        expect_len("u_bar", n_u_bar, batch * projection.field_len())?;
        expect_len("basis_bar_out", n_basis_bar, kept.basis.len())?;
        expect_len("ic_bar_out", n_ic_bar, batch * projection.ic_len())?;
        let gradient =
            projection.backward_with_ic(&kept.forward, &kept.basis, u_bar, &kept.layer.pool)?;
        basis_out.copy_from_slice(&gradient.basis);
        ic_out.copy_from_slice(&gradient.ic);
        Ok(())
    })
}

/// Frees a kept forward pass. NULL is accepted and does nothing; a handle
/// freed already returns `TESSERA_STATUS_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_forward_free(forward: *mut TesseraForward) -> TesseraStatus {
    guard(|| FORWARDS.free(forward))
}
