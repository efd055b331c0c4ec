//! featrs: only registration lives here. Kernels (`hog`, `lbp`, `glcm`, `gabor`) are pure
//! Rust; `bindings` turns numpy arrays into slices and `error` maps errors to exceptions.
#[cfg(feature = "python")]
mod bindings;
pub mod error;
pub mod gabor;
pub mod glcm;
pub mod hog;
pub mod lbp;
pub mod parallel;
pub mod simd;
pub mod tiles;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _featrs(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    use bindings::{gabor, glcm, hog, lbp};
    use pyo3::prelude::*;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::max_threads, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::simd_path, m)?)?;
    m.add_function(wrap_pyfunction!(hog::hog_image, m)?)?;
    m.add_function(wrap_pyfunction!(hog::hog_batch, m)?)?;
    m.add_function(wrap_pyfunction!(hog::hog_cells, m)?)?;
    m.add_function(wrap_pyfunction!(lbp::lbp_image, m)?)?;
    m.add_function(wrap_pyfunction!(lbp::lbp_histogram_batch, m)?)?;
    m.add_function(wrap_pyfunction!(lbp::lbp_histogram_grid_batch, m)?)?;
    m.add_function(wrap_pyfunction!(glcm::glcm_counts, m)?)?;
    m.add_function(wrap_pyfunction!(glcm::glcm_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(glcm::glcm_props_dense, m)?)?;
    m.add_function(wrap_pyfunction!(glcm::glcm_props_batch, m)?)?;
    m.add_function(wrap_pyfunction!(glcm::glcm_props_grid_batch, m)?)?;
    m.add_function(wrap_pyfunction!(gabor::gabor_kernel_unscaled, m)?)?;
    m.add_function(wrap_pyfunction!(gabor::gabor_filter, m)?)?;
    m.add_function(wrap_pyfunction!(gabor::gabor_bank_batch, m)?)?;
    Ok(())
}
