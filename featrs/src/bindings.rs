//! The thin binding layer: Python buffers in, kernel calls with the GIL released,
//! errors mapped through `FeatError`. No arithmetic belongs here.
//!
//! Outputs are allocated by the Python façade (numpy) and passed in as writable
//! buffers, so no numpy crate is needed and nothing is copied.
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;

use crate::error::{FeatError, Result};

/// Number of threads the batch functions use by default (all cores).
#[pyfunction]
pub fn max_threads() -> usize {
    crate::parallel::default_threads()
}

/// A read-only, C-contiguous view of a buffer's items.
pub(crate) fn read_slice<'a, T: Element>(buf: &'a PyBuffer<T>, what: &str) -> Result<&'a [T]> {
    if !buf.is_c_contiguous() {
        return Err(FeatError::Value(format!("{what} must be C-contiguous")));
    }
    // SAFETY: the buffer is C-contiguous with item type T (checked by PyBuffer::get) and
    // the exporting object stays alive while `buf` lives.
    Ok(unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const T, buf.item_count()) })
}

/// A writable, C-contiguous view of a buffer's items.
#[allow(clippy::mut_from_ref)]
pub(crate) fn write_slice<'a, T: Element>(buf: &'a PyBuffer<T>, what: &str) -> Result<&'a mut [T]> {
    if buf.readonly() {
        return Err(FeatError::Value(format!("{what} must be writable")));
    }
    if !buf.is_c_contiguous() {
        return Err(FeatError::Value(format!("{what} must be C-contiguous")));
    }
    // SAFETY: as in read_slice; the façade allocates the output and does not share it.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.buf_ptr() as *mut T, buf.item_count()) })
}

/// Get a typed buffer, turning a dtype mismatch into a TypeError that names the argument.
pub(crate) fn buffer<T: Element>(obj: &PyAny, what: &str, dtype: &str) -> PyResult<PyBuffer<T>> {
    PyBuffer::<T>::get(obj).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{what} must be a C-contiguous {dtype} array"))
    })
}

/// Run a kernel with the GIL released; a panic becomes a RuntimeError, never a crash.
pub(crate) fn run<R, F>(py: Python<'_>, f: F) -> PyResult<R>
where
    F: FnOnce() -> Result<R> + Send,
    R: Send,
{
    py.allow_threads(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(FeatError::Internal(msg))
        })
    })
    .map_err(PyErr::from)
}

/// `None` means all cores.
pub(crate) fn threads(n_threads: Option<usize>) -> usize {
    n_threads.unwrap_or_else(crate::parallel::default_threads)
}
