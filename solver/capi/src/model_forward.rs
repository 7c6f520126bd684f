//! A trained model's prediction kept for its gradient in the initial
//! conditions: `tessera_model_forward` predicts as `tessera_model_predict`
//! does and returns a handle, and `tessera_model_forward_backward` pulls a
//! gradient of the predicted fields back to the initial conditions, through
//! the constraint layer and the backbone. What data assimilation and inverse
//! problems ask of a trained surrogate: which initial state explains these
//! later observations?

use std::sync::Arc;

use tessera_solver::embed::ModelForward;

use crate::args::{expect_len, input, output, write_handle};
use crate::handles::Table;
use crate::model::{Loaded, PredictCall, TesseraModel};
use crate::solve_status::TesseraSolveStatus;
use crate::status::{CallError, TesseraStatus, guard};

/// An opaque handle to a kept prediction (never dereferenced by the library:
/// see the header's notes on handles).
pub struct TesseraModelForward {
    _opaque: [u8; 0],
}

/// A prediction with the model that made it, so freeing the model's handle
/// first is allowed.
struct Kept {
    loaded: Arc<Loaded>,
    forward: ModelForward,
}

static MODEL_FORWARDS: Table<Kept> = Table::new("model forward");

/// `tessera_model_predict` (the same arguments and outputs, the same
/// results, bit for bit), and a new handle in `*out` that keeps the
/// prediction for `tessera_model_forward_backward`: each sample's basis and
/// solved problems (what a training step keeps, without the backbone's
/// activations, which the backward pass computes again) until
/// `tessera_model_forward_free`.
///
/// # Safety
/// Each pointer NULL or valid for its length; outputs must not overlap
/// inputs; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_forward(
    model: *const TesseraModel,
    ic: *const f64,
    n_ic: usize,
    fields_out: *mut f64,
    n_fields: usize,
    status_out: *mut TesseraSolveStatus,
    n_status: usize,
    out: *mut *mut TesseraModelForward,
) -> TesseraStatus {
    guard(|| {
        if out.is_null() {
            return Err(CallError::new(TesseraStatus::NullPointer, "`out` is NULL"));
        }
        // SAFETY: the caller's contract.
        let call = unsafe {
            PredictCall::new(model, ic, n_ic, fields_out, n_fields, status_out, n_status)
        }?;
        let loaded = Arc::clone(&call.loaded);
        let forward = loaded.model.forward_in(call.ic, &loaded.pool)?;
        call.write(forward.predictions());
        let key = MODEL_FORWARDS.insert(Kept { loaded, forward });
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { write_handle(out, key) };
        Ok(())
    })
}

/// The gradient in the initial conditions of a kept prediction: given
/// `fields_bar = ∂L/∂fields` (`n_fields_bar = batch · shape.field_len`
/// values, `[batch][T][X](/[Y])`), writes `∂L/∂ic` (`n_ic_bar = n_ic` of
/// the forward call, laid out like its `ic`) to `ic_bar_out`. An initial
/// condition reaches the fields through the backbone (its features hold it)
/// and through the constraint layer (its rows read it); both parts are
/// summed. A kept prediction may be differentiated any number of times,
/// from any thread; the result does not depend on the number of threads.
/// NaN or infinite `fields_bar` returns `TESSERA_STATUS_NON_FINITE`.
///
/// # Safety
/// Each pointer NULL or valid for its length; `ic_bar_out` must not overlap
/// `fields_bar`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_forward_backward(
    forward: *const TesseraModelForward,
    fields_bar: *const f64,
    n_fields_bar: usize,
    ic_bar_out: *mut f64,
    n_ic_bar: usize,
) -> TesseraStatus {
    guard(|| {
        let kept = MODEL_FORWARDS.get(forward)?;
        // SAFETY (both): the caller's contract.
        let fields_bar = unsafe { input(fields_bar, n_fields_bar, "fields_bar") }?;
        let out = unsafe { output(ic_bar_out, n_ic_bar, "ic_bar_out") }?;
        let (model, batch) = (&kept.loaded.model, kept.forward.predictions().batch());
        expect_len("fields_bar", n_fields_bar, batch * model.field_len())?;
        expect_len("ic_bar_out", n_ic_bar, batch * model.ic_len())?;
        let ic_bar = model.backward_in(&kept.forward, fields_bar, &kept.loaded.pool)?;
        out.copy_from_slice(&ic_bar);
        Ok(())
    })
}

/// Frees a kept prediction. NULL is accepted and does nothing; a handle
/// freed already returns `TESSERA_STATUS_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_model_forward_free(forward: *mut TesseraModelForward) -> TesseraStatus {
    guard(|| MODEL_FORWARDS.free(forward))
}
