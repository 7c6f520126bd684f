//! A trained model: load a run directory, query its shape, predict, free.

use std::ffi::c_char;
use std::sync::Arc;

use tessera_scenarios::Device;
use tessera_solver::embed::{Predictions, TrainedModel, WorkerPool};

use crate::args::{expect_len, ic_batch, input, optional_output, output, path, text, write_handle};
use crate::handles::Table;
use crate::shape::TesseraShape;
use crate::solve_status::{TesseraSolveStatus, write_statuses};
use crate::status::{CallError, TesseraStatus, guard};
use crate::threads::new_pool;

/// An opaque handle to a trained model (never dereferenced by the library:
/// see the header's notes on handles).
pub struct TesseraModel {
    _opaque: [u8; 0],
}

pub(crate) struct Loaded {
    pub model: TrainedModel,
    pub pool: WorkerPool,
}

static MODELS: Table<Loaded> = Table::new("model");

/// Loads the run directory `run_dir` (written by `tessera run` or `tessera
/// train`: its `config.toml` and `checkpoint.safetensors`) and writes a new
/// handle to `*out`. The handle computes on the CPU, on a pool of the size set
/// by `tessera_set_num_threads`. Free it with `tessera_model_free`.
///
/// # Safety
/// `run_dir` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_load(
    run_dir: *const c_char,
    out: *mut *mut TesseraModel,
) -> TesseraStatus {
    // SAFETY: the caller's contract, and a static string for the device.
    unsafe { tessera_model_load_on(run_dir, c"cpu".as_ptr(), out) }
}

/// As `tessera_model_load`, with the model on `device`: `"cpu"`, `"cuda"`
/// (this process's GPU: the one of its local rank under `mpirun` or `srun`,
/// else GPU 0) or `"cuda:N"` (GPU `N`). On a GPU the backbone and the
/// experts' solves run there (README, "GPUs"); the predictions are the same
/// arrays. A device that cannot be used returns `TESSERA_STATUS_DEVICE` (a
/// library built without the `cuda` feature, no CUDA driver, no such GPU); a
/// device that is not one of those forms `TESSERA_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `run_dir` and `device` must be NULL or NUL-terminated strings; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_load_on(
    run_dir: *const c_char,
    device: *const c_char,
    out: *mut *mut TesseraModel,
) -> TesseraStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let dir = unsafe { path(run_dir, "run_dir") }?;
        // SAFETY: the caller's contract.
        let device: Device = unsafe { text(device, "device") }?
            .parse()
            .map_err(|e: String| CallError::new(TesseraStatus::InvalidArgument, e))?;
        if out.is_null() {
            return Err(CallError::new(TesseraStatus::NullPointer, "`out` is NULL"));
        }
        if !dir.is_dir() {
            return Err(CallError::new(
                TesseraStatus::Io,
                format!("run directory {} does not exist", dir.display()),
            ));
        }
        let model = TrainedModel::load_on(&dir, device)?;
        let key = MODELS.insert(Loaded {
            model,
            pool: new_pool()?,
        });
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { write_handle(out, key) };
        Ok(())
    })
}

/// Frees a model. NULL is accepted and does nothing; a handle freed already
/// returns `TESSERA_STATUS_INVALID_HANDLE`. Waits for the handle's worker
/// threads to exit (after any call still running on it from another thread).
#[unsafe(no_mangle)]
pub extern "C" fn tessera_model_free(model: *mut TesseraModel) -> TesseraStatus {
    guard(|| MODELS.free(model))
}

/// Writes the model's shape (grid, initial-condition and field lengths,
/// experts, basis size) to `*out`.
///
/// # Safety
/// `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_shape(
    model: *const TesseraModel,
    out: *mut TesseraShape,
) -> TesseraStatus {
    guard(|| {
        let loaded = MODELS.get(model)?;
        // SAFETY: the caller's contract.
        let out = unsafe { output(out, 1, "out") }?;
        let m = &loaded.model;
        let scenario = m.scenario();
        let constrained = m.n_experts() > 0;
        out[0] = TesseraShape {
            n_experts: m.n_experts(),
            points_per_expert: if constrained {
                scenario.constraint.points
            } else {
                0
            },
            n_basis: scenario.backbone_outputs(),
            ..TesseraShape::of_grid(&m.dims())
        };
        Ok(())
    })
}

/// Writes where the values of a predicted field lie along `axis` (0: its
/// `T` time levels, 1: its `X` points, 2: its `Y` points; an initial
/// condition's along 1 and 2) to `out`: `n_out` values, the axis's length
/// (`shape.nt`, `shape.nx`, `shape.ny`). These are the `grid/t`, `grid/x`,
/// `grid/y` arrays `tessera generate` writes for the model's scenario. An
/// axis the grid does not have returns `TESSERA_STATUS_SHAPE_MISMATCH`.
///
/// # Safety
/// `out` must be NULL or valid for `n_out` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_coordinates(
    model: *const TesseraModel,
    axis: usize,
    out: *mut f64,
    n_out: usize,
) -> TesseraStatus {
    guard(|| {
        let loaded = MODELS.get(model)?;
        let coordinates = loaded.model.coordinates(axis)?;
        expect_len("out", n_out, coordinates.len())?;
        // SAFETY: the caller's contract.
        let out = unsafe { output(out, n_out, "out") }?;
        out.copy_from_slice(&coordinates);
        Ok(())
    })
}

/// Predicts the constrained fields for a batch of initial conditions.
///
/// - `ic`: `n_ic` values, `[batch][X](/[Y])` row-major; `batch = n_ic /
///   shape.ic_len` (a positive whole number; one initial condition is a batch
///   of one).
/// - `out`: `n_out = batch · shape.field_len` values, written as
///   `[batch][T][X](/[Y])`.
/// - `status_out`: `n_status = batch · shape.n_experts` records, `[batch][K]`,
///   each expert's solve; or NULL with `n_status = 0`.
///
/// The result equals `tessera eval`'s prediction for the same initial
/// condition, for any number of threads and any batching. NaN or infinite
/// input returns `TESSERA_STATUS_NON_FINITE`.
///
/// # Safety
/// Each pointer must be NULL or valid for its length (`status_out`: `n_status`
/// records), and `out` and `status_out` must not overlap the inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_model_predict(
    model: *const TesseraModel,
    ic: *const f64,
    n_ic: usize,
    out: *mut f64,
    n_out: usize,
    status_out: *mut TesseraSolveStatus,
    n_status: usize,
) -> TesseraStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let call = unsafe { PredictCall::new(model, ic, n_ic, out, n_out, status_out, n_status) }?;
        let predictions = call.loaded.model.predict_in(call.ic, &call.loaded.pool)?;
        call.write(&predictions);
        Ok(())
    })
}

/// The checked arguments of a prediction (`tessera_model_predict`, and
/// `tessera_model_forward`, which keeps it).
pub(crate) struct PredictCall<'a> {
    pub loaded: Arc<Loaded>,
    pub ic: &'a [f64],
    out: &'a mut [f64],
    statuses: Option<&'a mut [TesseraSolveStatus]>,
}

impl<'a> PredictCall<'a> {
    /// Checks the handle, the pointers and the lengths.
    ///
    /// # Safety
    /// As `tessera_model_predict`.
    pub(crate) unsafe fn new(
        model: *const TesseraModel,
        ic: *const f64,
        n_ic: usize,
        out: *mut f64,
        n_out: usize,
        status_out: *mut TesseraSolveStatus,
        n_status: usize,
    ) -> Result<Self, CallError> {
        let loaded = MODELS.get(model)?;
        let m = &loaded.model;
        // SAFETY (all three): the caller's contract.
        let ic = unsafe { input(ic, n_ic, "ic") }?;
        let out = unsafe { output(out, n_out, "out") }?;
        let statuses = unsafe { optional_output(status_out, n_status, "status_out") }?;
        let batch = ic_batch(n_ic, m.ic_len())?;
        expect_len("out", n_out, batch * m.field_len())?;
        if let Some(s) = &statuses {
            expect_len("status_out", s.len(), batch * m.n_experts())?;
        }
        Ok(Self {
            loaded,
            ic,
            out,
            statuses,
        })
    }

    /// Writes the fields and statuses of `predictions` to the caller's arrays.
    pub(crate) fn write(self, predictions: &Predictions) {
        self.out.copy_from_slice(&predictions.fields);
        write_statuses(&predictions.statuses, self.statuses);
    }
}
