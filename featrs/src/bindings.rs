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

// --- hog / lbp ---

use crate::hog::{self as hog_kernel, BlockNorm, HogParams};
use crate::lbp::{Lbp, Method};

/// Shape of a buffer as (rows, cols, channels): 2-D is one channel, 3-D is channel-last.
fn image_dims<T: Element>(buf: &PyBuffer<T>, what: &str) -> Result<(usize, usize, usize)> {
    match buf.shape() {
        [r, c] => Ok((*r, *c, 1)),
        [r, c, ch] => Ok((*r, *c, *ch)),
        s => Err(FeatError::Value(format!("{what} must be 2-D or 3-D, got shape {s:?}"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn hog_params(
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
    block_norm: &str,
    transform_sqrt: bool,
) -> Result<HogParams> {
    Ok(HogParams { orientations, cell, block, norm: BlockNorm::parse(block_norm)?, transform_sqrt })
}

/// numpy itself settles the rare gradients on a decision edge, as skimage computes them.
///
/// Called with the GIL released (from `run`, possibly on a worker thread); it takes the
/// GIL only for those few values.
struct NumpyOracle;

impl NumpyOracle {
    fn call(f: impl FnOnce(Python<'_>, &PyModule) -> PyResult<Vec<f64>>) -> Result<Vec<f64>> {
        Python::with_gil(|py| f(py, py.import("numpy")?))
            .map_err(|e| FeatError::Internal(format!("numpy call failed: {e}")))
    }
}

impl hog_kernel::Oracle for NumpyOracle {
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
        Self::call(|_, np| {
            let gy = np.call_method1("array", (gy.to_vec(), "float64"))?;
            let gx = np.call_method1("array", (gx.to_vec(), "float64"))?;
            let degrees = np.call_method1("rad2deg", (np.call_method1("arctan2", (gy, gx))?,))?;
            degrees.call_method1("__mod__", (180.0,))?.call_method0("tolist")?.extract()
        })
    }

    fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>> {
        let dtype = if single { "float32" } else { "float64" };
        Self::call(|_, np| {
            let gr = np.call_method1("array", (gr.to_vec(), dtype))?;
            let gc = np.call_method1("array", (gc.to_vec(), dtype))?;
            np.call_method1("hypot", (gr, gc))?.call_method0("tolist")?.extract()
        })
    }
}

fn hog_buffer<T: Element + hog_kernel::Pixel>(
    py: Python<'_>,
    image: &PyBuffer<T>,
    p: &HogParams,
    out: &PyAny,
) -> PyResult<()> {
    let out = buffer::<f64>(out, "out", "float64")?;
    let (rows, cols, channels) = image_dims(image, "image")?;
    let img = read_slice(image, "image")?;
    let dst = write_slice(&out, "out")?;
    run(py, || hog_kernel::hog_into(img, rows, cols, channels, p, &NumpyOracle, dst))
}

/// Number of values `hog` writes for an image of `rows x cols` (raises like skimage).
#[pyfunction]
pub fn hog_len(
    rows: usize,
    cols: usize,
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
) -> PyResult<(usize, usize)> {
    let p = HogParams { orientations, cell, block, norm: BlockNorm::L2Hys, transform_sqrt: false };
    let s = hog_kernel::hog_shape(rows, cols, &p)?;
    Ok(s.n_blocks)
}

/// HOG of one uint8, float32 or float64 image (2-D, or 3-D channel-last) into `out`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn hog_image(
    py: Python<'_>,
    image: &PyAny,
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
    block_norm: &str,
    transform_sqrt: bool,
    out: &PyAny,
) -> PyResult<()> {
    let p = hog_params(orientations, cell, block, block_norm, transform_sqrt)?;
    if let Ok(b) = PyBuffer::<u8>::get(image) {
        hog_buffer(py, &b, &p, out)
    } else if let Ok(b) = PyBuffer::<f32>::get(image) {
        hog_buffer(py, &b, &p, out)
    } else if let Ok(b) = PyBuffer::<f64>::get(image) {
        hog_buffer(py, &b, &p, out)
    } else {
        Err(FeatError::Type("image must be a C-contiguous uint8, float32 or float64 array".into()).into())
    }
}

/// HOG of each image of a uint8 (N, H, W) stack into the rows of `out` (N, D), in parallel.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn hog_batch(
    py: Python<'_>,
    images: &PyAny,
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
    block_norm: &str,
    transform_sqrt: bool,
    n_threads: Option<usize>,
    out: &PyAny,
) -> PyResult<()> {
    let p = hog_params(orientations, cell, block, block_norm, transform_sqrt)?;
    let images = buffer::<u8>(images, "images", "uint8")?;
    let out = buffer::<f64>(out, "out", "float64")?;
    let (n, rows, cols) = stack_dims(&images)?;
    let row_len = if n == 0 { 0 } else { hog_kernel::hog_shape(rows, cols, &p)?.len(&p) };
    let imgs = read_slice(&images, "images")?;
    let dst = write_slice(&out, "out")?;
    let n_threads = threads(n_threads);
    run(py, || {
        crate::parallel::for_each_image(imgs, rows * cols, dst, row_len, n_threads, |img, row| {
            hog_kernel::hog_into(img, rows, cols, 1, &p, &NumpyOracle, row)
        })
    })
}

fn stack_dims<T: Element>(buf: &PyBuffer<T>) -> Result<(usize, usize, usize)> {
    match buf.shape() {
        [n, r, c] => Ok((*n, *r, *c)),
        s => Err(FeatError::Value(format!("images must have shape (N, H, W), got {s:?}"))),
    }
}

fn lbp_operator(p: usize, rp: &PyAny, cp: &PyAny, method: &str) -> PyResult<Lbp> {
    let rp = buffer::<f64>(rp, "rp", "float64")?;
    let cp = buffer::<f64>(cp, "cp", "float64")?;
    Ok(Lbp::new(p, read_slice(&rp, "rp")?, read_slice(&cp, "cp")?, Method::parse(method)?)?)
}

fn lbp_buffer<T: Element + Into<f64> + Sync>(
    py: Python<'_>,
    image: &PyBuffer<T>,
    op: &Lbp,
    out: &PyAny,
) -> PyResult<()> {
    let out = buffer::<f64>(out, "out", "float64")?;
    let (rows, cols, channels) = image_dims(image, "image")?;
    if channels != 1 || image.shape().len() != 2 {
        return Err(FeatError::Value("image must be 2-D".into()).into());
    }
    let img = read_slice(image, "image")?;
    let dst = write_slice(&out, "out")?;
    run(py, || op.codes_into(img, rows, cols, dst))
}

/// LBP codes of one uint8 or float64 2-D image into `out` (float64, same shape).
///
/// `rp`, `cp` are the neighbour offsets as skimage computes them.
#[pyfunction]
pub fn lbp_image(
    py: Python<'_>,
    image: &PyAny,
    p: usize,
    rp: &PyAny,
    cp: &PyAny,
    method: &str,
    out: &PyAny,
) -> PyResult<()> {
    let op = lbp_operator(p, rp, cp, method)?;
    if let Ok(b) = PyBuffer::<u8>::get(image) {
        lbp_buffer(py, &b, &op, out)
    } else if let Ok(b) = PyBuffer::<f64>::get(image) {
        lbp_buffer(py, &b, &op, out)
    } else {
        Err(FeatError::Type("image must be a C-contiguous uint8 or float64 array".into()).into())
    }
}

/// Normalised LBP code histogram of each image of a uint8 (N, H, W) stack, in parallel.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn lbp_histogram_batch(
    py: Python<'_>,
    images: &PyAny,
    p: usize,
    rp: &PyAny,
    cp: &PyAny,
    method: &str,
    n_threads: Option<usize>,
    out: &PyAny,
) -> PyResult<()> {
    let op = lbp_operator(p, rp, cp, method)?;
    let Some(n_bins) = op.method().n_codes(p) else {
        return Err(FeatError::Value("method 'var' has no code histogram".into()).into());
    };
    let images = buffer::<u8>(images, "images", "uint8")?;
    let out = buffer::<f64>(out, "out", "float64")?;
    let (_, rows, cols) = stack_dims(&images)?;
    let imgs = read_slice(&images, "images")?;
    let dst = write_slice(&out, "out")?;
    let n_threads = threads(n_threads);
    run(py, || {
        let plan = if imgs.is_empty() { None } else { Some(op.plan(rows, cols)?) };
        crate::parallel::for_each_image(imgs, rows * cols, dst, n_bins, n_threads, |img, row| match &plan {
            Some(plan) => op.histogram_with(plan, img, row),
            None => Ok(()),
        })
    })
}
