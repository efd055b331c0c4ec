//! Bindings of `lbp`: codes of one image, code histograms of a uint8 stack.
use std::cell::RefCell;

use numpy::{Element, Ix1, Ix2, PyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{compute, is_array_of, items, readonly, zeros, Stack};
use crate::error::{FeatError, Result};
use crate::lbp::{histogram_grid, GridPlan, GridScratch, Lbp, Method};

fn operator(p: usize, rp: &Bound<'_, PyAny>, cp: &Bound<'_, PyAny>, method: &str) -> Result<Lbp> {
    let rp = readonly::<f64, Ix1>(rp, "rp")?;
    let cp = readonly::<f64, Ix1>(cp, "cp")?;
    Lbp::new(p, items(&rp, "rp")?, items(&cp, "cp")?, Method::parse(method)?)
}

fn codes_of<'py, T: Element + Copy + Into<f64> + Sync>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    op: &Lbp,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let image = readonly::<T, Ix2>(image, "image")?;
    let (rows, cols) = (image.shape()[0], image.shape()[1]);
    compute(py, &image, "image", Ix2(rows, cols), |src, dst| op.codes_into(src, rows, cols, dst))
}

/// LBP codes of one 2-D uint8 or float64 image (float64, same shape).
///
/// `rp`, `cp` are the neighbour offsets as skimage computes them.
#[pyfunction]
pub fn lbp_image<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    p: usize,
    rp: &Bound<'py, PyAny>,
    cp: &Bound<'py, PyAny>,
    method: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let op = operator(p, rp, cp, method)?;
    if is_array_of::<u8>(image) {
        codes_of::<u8>(py, image, &op)
    } else if is_array_of::<f64>(image) {
        codes_of::<f64>(py, image, &op)
    } else {
        Err(FeatError::Type("image must be a 2-D uint8 or float64 array".into()).into())
    }
}

thread_local! {
    static SCRATCH: RefCell<GridScratch> = RefCell::new(GridScratch::default());
}

/// Histograms of every tile, every operator, every image: `(N, row_len)`.
fn grid_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    ops: Vec<Lbp>,
    grid: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let stack = Stack::read(images)?;
    if stack.n == 0 {
        let row_len: usize = ops.iter().filter_map(|op| op.method().n_codes(op.points())).sum::<usize>() * grid * grid;
        return Ok(zeros::<f64, Ix2>(py, Ix2(0, row_len))?);
    }
    let plan = GridPlan::shared(&ops, stack.rows, stack.cols, grid)?;
    stack.each_image(py, plan.row_len(), n_threads, |img, row| {
        SCRATCH.with(|s| histogram_grid(&ops, &plan, img, &mut s.borrow_mut(), row))
    })
}

/// Normalised LBP code histogram of each image of a uint8 (N, H, W) stack, in parallel.
#[pyfunction]
pub fn lbp_histogram_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    p: usize,
    rp: &Bound<'py, PyAny>,
    cp: &Bound<'py, PyAny>,
    method: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let op = operator(p, rp, cp, method)?;
    if op.method().n_codes(p).is_none() {
        return Err(FeatError::Value("method 'var' has no code histogram".into()).into());
    }
    grid_batch(py, images, vec![op], 1, n_threads)
}

/// Per-tile LBP histograms of a uint8 (N, H, W) stack for several operators: `ops` holds
/// `(P, rp, cp)` per operator; columns are operator-major, then tile (row-major), then code.
#[pyfunction]
pub fn lbp_histogram_grid_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    ops: Vec<(usize, Vec<f64>, Vec<f64>)>,
    method: &str,
    grid: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let method = Method::parse(method)?;
    if method.n_codes(1).is_none() {
        return Err(FeatError::Value("method 'var' has no code histogram".into()).into());
    }
    let ops = ops.iter().map(|(p, rp, cp)| Lbp::new(*p, rp, cp, method)).collect::<Result<Vec<_>>>()?;
    grid_batch(py, images, ops, grid, n_threads)
}
