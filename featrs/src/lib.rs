//! featrs: only registration lives here. Kernels (`hog`, `lbp`, `glcm`, `gabor`) are pure
//! Rust; `bindings` turns Python buffers into slices and `error` maps errors to exceptions.
use pyo3::prelude::*;

mod bindings;
pub mod error;
pub mod parallel;

#[pymodule]
fn _featrs(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::max_threads, m)?)?;
    register_glcm_gabor(m)?;
    Ok(())
}

// --- glcm / gabor ---
pub mod gabor;
pub mod glcm;
mod vector;

fn register_glcm_gabor(m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bindings::glcm_counts, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_props_dense, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_props_batch, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_kernel_unscaled, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_filter, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_bank_batch, m)?)?;
    Ok(())
}
// --- end glcm / gabor ---
