//! featrs: only registration lives here. Kernels (`hog`, `lbp`, `glcm`, `gabor`) are pure
//! Rust; `bindings` turns Python buffers into slices and `error` maps errors to exceptions.
use pyo3::prelude::*;

mod bindings;
pub mod error;
pub mod gabor;
pub mod glcm;
pub mod hog;
pub mod lbp;
pub mod parallel;
mod vector;

#[pymodule]
fn _featrs(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::max_threads, m)?)?;
    // HOG and LBP
    m.add_function(wrap_pyfunction!(bindings::hog_image, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::hog_len, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::hog_batch, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::lbp_image, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::lbp_histogram_batch, m)?)?;
    // GLCM and Gabor
    m.add_function(wrap_pyfunction!(bindings::glcm_counts, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_props_dense, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::glcm_props_batch, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_kernel_unscaled, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_filter, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::gabor_bank_batch, m)?)?;
    Ok(())
}
