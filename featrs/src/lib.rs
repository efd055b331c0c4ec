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
    register_hog_lbp(m)?;
    Ok(())
}

// --- hog / lbp ---
pub mod hog;
pub mod lbp;

/// Registration of the HOG and LBP functions (called from `_featrs`).
fn register_hog_lbp(m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bindings::hog_image, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::hog_len, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::hog_batch, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::lbp_image, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::lbp_histogram_batch, m)?)?;
    Ok(())
}
