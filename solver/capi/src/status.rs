//! Status codes, the per-thread last-error message, and the guard every entry
//! point runs in: errors become a status plus a message, panics are caught.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use tessera_experts::ExpertsError;
use tessera_scenarios::ScenarioError;
use tessera_solver::SolverError;

/// What a call did. `TESSERA_STATUS_OK` (0) is success; for every other value
/// `tessera_last_error` describes the failure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TesseraStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// A handle that is not live: freed already, of another kind, or forged.
    InvalidHandle = 2,
    /// An array length disagrees with the handle's shape.
    ShapeMismatch = 3,
    /// NaN or infinite values in an input array.
    NonFinite = 4,
    /// A file or directory could not be read.
    Io = 5,
    /// A run directory whose config or checkpoint is missing, corrupt or does
    /// not match.
    InvalidRun = 6,
    /// An argument or setting out of its valid range (a scenario file that does
    /// not validate, a path that is not UTF-8, …).
    InvalidArgument = 7,
    /// A constraint solve stopped without usable weights (non-finite or
    /// singular).
    SolveFailed = 8,
    /// An internal error (a bug in Tessera); the message says where.
    Internal = 9,
    /// The requested device cannot be used (a library built without the
    /// `cuda` feature, no CUDA driver, no such GPU) or failed (a kernel that
    /// does not compile or launch).
    Device = 10,
}

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct CallError {
    pub status: TesseraStatus,
    pub message: String,
}

impl CallError {
    pub fn new(status: TesseraStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<SolverError> for CallError {
    fn from(e: SolverError) -> Self {
        use TesseraStatus as S;
        let status = match &e {
            SolverError::ShapeMismatch { .. } => S::ShapeMismatch,
            SolverError::NonFinite { .. } => S::NonFinite,
            SolverError::Io { .. } => S::Io,
            // A run directory that is not there (or unreadable) is an I/O
            // failure; one whose config does not parse is an invalid run.
            SolverError::RunConfig { source, .. }
                if matches!(**source, ScenarioError::Io { .. }) =>
            {
                S::Io
            }
            SolverError::Checkpoint { .. }
            | SolverError::Safetensors { .. }
            | SolverError::RunConfig { .. }
            | SolverError::Json { .. } => S::InvalidRun,
            SolverError::Experts(ExpertsError::ExpertFailed { .. }) => S::SolveFailed,
            SolverError::Experts(ExpertsError::ShapeMismatch { .. }) => S::ShapeMismatch,
            SolverError::Candle(_) => S::Internal,
            e if e.is_device_error() => S::Device,
            _ => S::InvalidArgument,
        };
        Self::new(status, e.to_string())
    }
}

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would end the C string early; show them instead.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs an entry point's body: `Ok` becomes `TESSERA_STATUS_OK`, an error its
/// status with the message stored, a panic `TESSERA_STATUS_INTERNAL`.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), CallError>) -> TesseraStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => TesseraStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (please report): {what}"));
            TesseraStatus::Internal
        }
    }
}

/// Copies the message of the last failed call on this thread into `buf`
/// (`len` bytes, always NUL-terminated when `len > 0`, truncated to fit) and
/// returns the message's full length in bytes without the NUL, so a return
/// value `>= len` means it was truncated. An empty message if no call failed
/// on this thread. `buf` may be NULL when `len` is 0 (to ask for the length).
/// A Fortran caller passes a `character(kind=c_char)` buffer and its length.
///
/// # Safety
/// `buf` must be valid for writing `len` bytes (or NULL with `len = 0`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tessera_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let message = e.borrow();
            let bytes = message.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: the caller guarantees `len` writable bytes at `buf`;
                // `n + 1 <= len`.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
    })
    .unwrap_or(0)
}
