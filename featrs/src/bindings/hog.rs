//! Bindings of `hog`: one image of any supported dtype, or a uint8 stack.
use numpy::{Element, IxDyn, PyArray2, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{compute, is_array_of, readonly, Stack};
use crate::error::{FeatError, Result};
use crate::hog::{self as kernel, BlockNorm, HogParams, Image, Pixel};

fn params(orientations: usize, cell: (usize, usize), block: (usize, usize), norm: &str, sqrt: bool) -> Result<HogParams> {
    Ok(HogParams { orientations, cell, block, norm: BlockNorm::parse(norm)?, transform_sqrt: sqrt })
}

/// numpy itself settles the rare gradients on a decision edge, as skimage computes them.
///
/// Called with the GIL released (from `run`, possibly on a worker thread); it takes the
/// GIL only for those few values.
struct NumpyOracle;

impl NumpyOracle {
    fn call(f: impl FnOnce(&Bound<'_, PyModule>) -> PyResult<Vec<f64>>) -> Result<Vec<f64>> {
        Python::attach(|py| f(&PyModule::import(py, "numpy")?)).map_err(FeatError::from)
    }
}

impl kernel::Oracle for NumpyOracle {
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
        Self::call(|np| {
            let gy = np.call_method1("array", (gy.to_vec(), "float64"))?;
            let gx = np.call_method1("array", (gx.to_vec(), "float64"))?;
            let degrees = np.call_method1("rad2deg", (np.call_method1("arctan2", (gy, gx))?,))?;
            degrees.call_method1("__mod__", (180.0,))?.call_method0("tolist")?.extract()
        })
    }

    fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>> {
        let dtype = if single { "float32" } else { "float64" };
        Self::call(|np| {
            let gr = np.call_method1("array", (gr.to_vec(), dtype))?;
            let gc = np.call_method1("array", (gc.to_vec(), dtype))?;
            np.call_method1("hypot", (gr, gc))?.call_method0("tolist")?.extract()
        })
    }
}

fn hog_of<'py, T: Element + Pixel>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    p: &HogParams,
    cells: bool,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let image = readonly::<T, IxDyn>(image, "image")?;
    let (rows, cols, channels) = match image.shape() {
        &[r, c] => (r, c, 1),
        &[r, c, ch] => (r, c, ch),
        s => return Err(FeatError::Value(format!("image must be 2-D or 3-D, got shape {s:?}")).into()),
    };
    let shape = kernel::hog_shape(rows, cols, p)?;
    let dims = if cells {
        vec![shape.n_cells.0, shape.n_cells.1, p.orientations]
    } else {
        vec![shape.n_blocks.0, shape.n_blocks.1, p.block.0, p.block.1, p.orientations]
    };
    let describe = if cells { kernel::hog_cells_into::<T> } else { kernel::hog_into::<T> };
    compute(py, &image, "image", IxDyn(&dims), |src, dst| {
        describe(Image::new(src, rows, cols, channels), p, &NumpyOracle, dst)
    })
}

/// HOG of one uint8, float32 or float64 image (2-D, or 3-D channel-last), shaped
/// `(n_blocks_row, n_blocks_col, cells_per_block[0], cells_per_block[1], orientations)`.
#[pyfunction]
pub fn hog_image<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
    block_norm: &str,
    transform_sqrt: bool,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let p = params(orientations, cell, block, block_norm, transform_sqrt)?;
    hog_any(py, image, &p, false)
}

fn hog_any<'py>(py: Python<'py>, image: &Bound<'py, PyAny>, p: &HogParams, cells: bool) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    if is_array_of::<u8>(image) {
        hog_of::<u8>(py, image, p, cells)
    } else if is_array_of::<f32>(image) {
        hog_of::<f32>(py, image, p, cells)
    } else if is_array_of::<f64>(image) {
        hog_of::<f64>(py, image, p, cells)
    } else {
        Err(FeatError::Type("image must be a uint8, float32 or float64 array".into()).into())
    }
}

/// skimage's `orientation_histogram` of one image (what `visualize=True` draws):
/// `(n_cells_row, n_cells_col, orientations)` float64 cell values.
#[pyfunction]
pub fn hog_cells<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    orientations: usize,
    cell: (usize, usize),
    transform_sqrt: bool,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let p = params(orientations, cell, (1, 1), "L2-Hys", transform_sqrt)?;
    hog_any(py, image, &p, true)
}

/// HOG of each image of a uint8 (N, H, W) stack: rows of an (N, D) float64 array, in parallel.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn hog_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    orientations: usize,
    cell: (usize, usize),
    block: (usize, usize),
    block_norm: &str,
    transform_sqrt: bool,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let p = params(orientations, cell, block, block_norm, transform_sqrt)?;
    let stack = Stack::read(images)?;
    let (rows, cols) = (stack.rows, stack.cols);
    let row_len = kernel::hog_shape(rows, cols, &p)?.len(&p);
    stack.each_image(py, row_len, n_threads, |img, row| {
        kernel::hog_into(Image::new(img, rows, cols, 1), &p, &NumpyOracle, row)
    })
}
