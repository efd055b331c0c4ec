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

// --- glcm / gabor ---
// Bindings of `glcm` and `gabor`. The Python façades (featrs/_glcm.py, featrs/_gabor.py)
// validate arguments, allocate outputs and pass C-contiguous arrays.
use std::cell::RefCell;

use crate::gabor;
use crate::glcm::{self, Prop};

/// An unsigned-integer image buffer of any width (signed images are viewed as unsigned
/// by the façade once checked non-negative).
enum UintImage {
    U8(PyBuffer<u8>),
    U16(PyBuffer<u16>),
    U32(PyBuffer<u32>),
    U64(PyBuffer<u64>),
}

fn uint_image(obj: &PyAny) -> PyResult<UintImage> {
    if let Ok(b) = PyBuffer::<u8>::get(obj) {
        return Ok(UintImage::U8(b));
    }
    if let Ok(b) = PyBuffer::<u16>::get(obj) {
        return Ok(UintImage::U16(b));
    }
    if let Ok(b) = PyBuffer::<u32>::get(obj) {
        return Ok(UintImage::U32(b));
    }
    if let Ok(b) = PyBuffer::<u64>::get(obj) {
        return Ok(UintImage::U64(b));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "image must be a C-contiguous unsigned integer array (uint8, uint16, uint32 or uint64)",
    ))
}

/// Co-occurrence counts (`graycomatrix` with `normed=False`) into a zeroed uint32
/// `(levels, levels, len(distances) * len(angles))` array.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn glcm_counts(
    py: Python<'_>,
    image: &PyAny,
    rows: usize,
    cols: usize,
    distances: Vec<f64>,
    angles: Vec<f64>,
    levels: usize,
    symmetric: bool,
    out: &PyAny,
) -> PyResult<()> {
    let img = uint_image(image)?;
    let out_buf = buffer::<u32>(out, "out", "uint32")?;
    let counts = write_slice(&out_buf, "out")?;
    macro_rules! count {
        ($b:expr) => {{
            let s = read_slice($b, "image")?;
            run(py, move || {
                let offsets = glcm::offsets(&distances, &angles)?;
                glcm::cooccurrence(s, rows, cols, &offsets, levels, symmetric, counts)
            })
        }};
    }
    match &img {
        UintImage::U8(b) => count!(b),
        UintImage::U16(b) => count!(b),
        UintImage::U32(b) => count!(b),
        UintImage::U64(b) => count!(b),
    }
}

/// `normed=True`: uint32 counts with `n_offsets` matrices -> float64 probabilities.
#[pyfunction]
pub fn glcm_normalize(py: Python<'_>, counts: &PyAny, n_offsets: usize, out: &PyAny) -> PyResult<()> {
    let c_buf = buffer::<u32>(counts, "counts", "uint32")?;
    let o_buf = buffer::<f64>(out, "out", "float64")?;
    let c = read_slice(&c_buf, "counts")?;
    let o = write_slice(&o_buf, "out")?;
    run(py, move || glcm::normalize(c, n_offsets, o))
}

/// `graycoprops(P, prop)` of a uint32 or float64 `(levels, levels, n_offsets)` matrix;
/// `unsure` flags correlations the façade must recompute with numpy (see glcm.rs).
#[pyfunction]
pub fn glcm_props_dense(
    py: Python<'_>,
    p: &PyAny,
    levels: usize,
    n_offsets: usize,
    prop: &str,
    out: &PyAny,
    unsure: &PyAny,
) -> PyResult<()> {
    let prop = Prop::from_name(prop)?;
    let o_buf = buffer::<f64>(out, "out", "float64")?;
    let u_buf = buffer::<u8>(unsure, "unsure", "uint8")?;
    let o = write_slice(&o_buf, "out")?;
    let u = write_slice(&u_buf, "unsure")?;
    if let Ok(b) = PyBuffer::<u32>::get(p) {
        let s = read_slice(&b, "P")?;
        return run(py, move || glcm::props_dense(s, levels, n_offsets, prop, o, u));
    }
    let b = buffer::<f64>(p, "P", "uint32 or float64")?;
    let s = read_slice(&b, "P")?;
    run(py, move || glcm::props_dense(s, levels, n_offsets, prop, o, u))
}

thread_local! {
    static GLCM_SCRATCH: RefCell<glcm::PairScratch> = RefCell::new(glcm::PairScratch::default());
}

/// GLCM properties of each uint8 image of an `(n, rows, cols)` stack into `out`
/// `(n, len(props) * n_offsets)`; correlations that need numpy's rounding are NaN.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn glcm_props_batch(
    py: Python<'_>,
    images: &PyAny,
    rows: usize,
    cols: usize,
    distances: Vec<f64>,
    angles: Vec<f64>,
    levels: usize,
    symmetric: bool,
    props: Vec<String>,
    n_threads: Option<usize>,
    out: &PyAny,
) -> PyResult<()> {
    let props = props.iter().map(|p| Prop::from_name(p)).collect::<Result<Vec<_>>>()?;
    let i_buf = buffer::<u8>(images, "images", "uint8")?;
    let o_buf = buffer::<f64>(out, "out", "float64")?;
    let imgs = read_slice(&i_buf, "images")?;
    let o = write_slice(&o_buf, "out")?;
    let n_threads = threads(n_threads);
    run(py, move || {
        let offsets = glcm::offsets(&distances, &angles)?;
        let image_len = rows
            .checked_mul(cols)
            .ok_or_else(|| FeatError::Value("image size overflows".into()))?;
        let row_len = props.len() * offsets.len();
        crate::parallel::for_each_image(imgs, image_len, o, row_len, n_threads, |img, row| {
            GLCM_SCRATCH.with(|s| {
                let mut unsure = vec![0u8; offsets.len()];
                glcm::props_from_pairs(
                    img,
                    rows,
                    cols,
                    &offsets,
                    levels,
                    symmetric,
                    &props,
                    &mut s.borrow_mut(),
                    row,
                    &mut unsure,
                )
            })
        })
    })
}

/// Gabor filter parameters as the façade computes them (scikit-image's arithmetic):
/// `(frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y)`.
type GaborArgs = (f64, f64, f64, f64, f64, f64, usize, usize);

fn gabor_of(a: GaborArgs) -> gabor::Gabor {
    let (frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y) = a;
    gabor::Gabor { frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y }
}

/// The unscaled Gabor kernel (real and imaginary float64 planes of its shape).
#[pyfunction]
pub fn gabor_kernel_unscaled(py: Python<'_>, params: GaborArgs, out_re: &PyAny, out_im: &PyAny) -> PyResult<()> {
    let g = gabor_of(params);
    let (r_buf, i_buf) = (buffer::<f64>(out_re, "out_re", "float64")?, buffer::<f64>(out_im, "out_im", "float64")?);
    let (re, im) = (write_slice(&r_buf, "out_re")?, write_slice(&i_buf, "out_im")?);
    run(py, move || gabor::kernel_unscaled(&g, re, im))
}

thread_local! {
    static GABOR_SCRATCH: RefCell<gabor::GaborScratch> = RefCell::new(gabor::GaborScratch::default());
}

/// Real and imaginary Gabor responses of a float64 image (`single`: float32 kernel).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn gabor_filter(
    py: Python<'_>,
    image: &PyAny,
    rows: usize,
    cols: usize,
    params: GaborArgs,
    mode: &str,
    cval: f64,
    single: bool,
    out_re: &PyAny,
    out_im: &PyAny,
) -> PyResult<()> {
    let g = gabor_of(params);
    let mode = gabor::Mode::from_name(mode)?;
    let img_buf = buffer::<f64>(image, "image", "float64")?;
    let img = read_slice(&img_buf, "image")?;
    let (r_buf, i_buf) = (buffer::<f64>(out_re, "out_re", "float64")?, buffer::<f64>(out_im, "out_im", "float64")?);
    let (re, im) = (write_slice(&r_buf, "out_re")?, write_slice(&i_buf, "out_im")?);
    run(py, move || {
        GABOR_SCRATCH.with(|s| gabor::filter(img, rows, cols, &g, mode, cval, single, &mut s.borrow_mut(), re, im))
    })
}

/// Mean and variance of the Gabor magnitude for each filter of `bank`, for each uint8
/// image of an `(n, rows, cols)` stack, into `out` `(n, 2 * len(bank))`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn gabor_bank_batch(
    py: Python<'_>,
    images: &PyAny,
    rows: usize,
    cols: usize,
    bank: Vec<GaborArgs>,
    mode: &str,
    cval: f64,
    n_threads: Option<usize>,
    out: &PyAny,
) -> PyResult<()> {
    let bank: Vec<gabor::Gabor> = bank.into_iter().map(gabor_of).collect();
    let mode = gabor::Mode::from_name(mode)?;
    let i_buf = buffer::<u8>(images, "images", "uint8")?;
    let o_buf = buffer::<f64>(out, "out", "float64")?;
    let imgs = read_slice(&i_buf, "images")?;
    let o = write_slice(&o_buf, "out")?;
    let n_threads = threads(n_threads);
    run(py, move || {
        let image_len = rows
            .checked_mul(cols)
            .ok_or_else(|| FeatError::Value("image size overflows".into()))?;
        let plan = gabor::BankPlan::new(&bank, rows, cols)?;
        crate::parallel::for_each_image(imgs, image_len, o, 2 * bank.len(), n_threads, |img, row| {
            GABOR_SCRATCH.with(|s| gabor::bank_stats(img, &plan, mode, cval, &mut s.borrow_mut(), row))
        })
    })
}
// --- end glcm / gabor ---
