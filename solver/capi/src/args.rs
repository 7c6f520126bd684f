//! Checked views of the caller's pointers: NULL and length checks before any
//! array is read or written.

use std::ffi::{CStr, c_char};
use std::path::PathBuf;

use crate::status::{CallError, TesseraStatus};

fn null(what: &str) -> CallError {
    CallError::new(TesseraStatus::NullPointer, format!("`{what}` is NULL"))
}

/// `len` values at `ptr`.
///
/// # Safety
/// If non-NULL, `ptr` must be valid for reading `len` values.
pub(crate) unsafe fn input<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], CallError> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable values.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `len` writable values at `ptr`.
///
/// # Safety
/// If non-NULL, `ptr` must be valid for writing `len` values and not alias
/// another argument.
pub(crate) unsafe fn output<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> Result<&'a mut [T], CallError> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` writable values.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An optional output: `None` for NULL (then `len` must be 0).
///
/// # Safety
/// As [`output`].
pub(crate) unsafe fn optional_output<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> Result<Option<&'a mut [T]>, CallError> {
    if ptr.is_null() {
        expect_len(what, len, 0)?;
        return Ok(None);
    }
    // SAFETY: as `output`.
    unsafe { output(ptr, len, what) }.map(Some)
}

/// A [`TesseraStatus::ShapeMismatch`] unless `got == expected`.
pub(crate) fn expect_len(what: &str, got: usize, expected: usize) -> Result<(), CallError> {
    if got == expected {
        return Ok(());
    }
    Err(CallError::new(
        TesseraStatus::ShapeMismatch,
        format!("`{what}` has length {got}, expected {expected}"),
    ))
}

/// The batch size of `n_ic` initial-condition values of `ic_len` each: a
/// positive whole number, else a [`TesseraStatus::ShapeMismatch`].
pub(crate) fn ic_batch(n_ic: usize, ic_len: usize) -> Result<usize, CallError> {
    if n_ic == 0 || ic_len == 0 || !n_ic.is_multiple_of(ic_len) {
        return Err(CallError::new(
            TesseraStatus::ShapeMismatch,
            format!(
                "`ic` has length {n_ic}, expected a positive multiple of {ic_len} (initial conditions [batch][X](/[Y]))"
            ),
        ));
    }
    Ok(n_ic / ic_len)
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// If non-NULL, `ptr` must point to a NUL-terminated string.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, CallError> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|e| {
        CallError::new(
            TesseraStatus::InvalidArgument,
            format!("`{what}` is not UTF-8: {e}"),
        )
    })
}

/// A NUL-terminated UTF-8 path.
///
/// # Safety
/// If non-NULL, `ptr` must point to a NUL-terminated string.
pub(crate) unsafe fn path(ptr: *const c_char, what: &str) -> Result<PathBuf, CallError> {
    // SAFETY: the caller's contract.
    Ok(PathBuf::from(unsafe { text(ptr, what) }?))
}

/// Writes a new handle to `out`.
///
/// # Safety
/// If non-NULL, `out` must be valid for writing one pointer.
pub(crate) unsafe fn write_handle<T>(out: *mut *mut T, key: usize) {
    // SAFETY: checked non-NULL by the caller of this function before the
    // object was created; the caller guarantees it is writable.
    unsafe { *out = std::ptr::without_provenance_mut(key) };
}
