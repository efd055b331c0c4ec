//! Bindings of `gabor`: the kernel, the filter responses of one image, bank statistics
//! of a uint8 stack.
use std::cell::RefCell;

use numpy::{Ix2, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{compute, items, items_mut, readonly, run, threads, zeros, Stack};
use crate::gabor::{self as kernel, Gabor, Mode};

/// Gabor filter parameters as the façade computes them (scikit-image's arithmetic):
/// `(frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y)`.
type GaborArgs = (f64, f64, f64, f64, f64, f64, usize, usize);

fn gabor_of(a: GaborArgs) -> Gabor {
    let (frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y) = a;
    Gabor { frequency, sigma_x, sigma_y, cos_theta, sin_theta, offset, half_x, half_y }
}

type Planes<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

/// The unscaled Gabor kernel: real and imaginary float64 planes of its shape.
#[pyfunction]
pub fn gabor_kernel_unscaled<'py>(py: Python<'py>, params: GaborArgs) -> PyResult<Planes<'py>> {
    let g = gabor_of(params);
    g.check()?;
    let (h, w) = g.kernel_shape();
    let (re, im) = (zeros::<f64, Ix2>(py, Ix2(h, w))?, zeros::<f64, Ix2>(py, Ix2(h, w))?);
    let (mut r, mut i) = (re.readwrite(), im.readwrite());
    let (r, i) = (items_mut(&mut r)?, items_mut(&mut i)?);
    run(py, || kernel::kernel_unscaled(&g, r, i))?;
    Ok((re, im))
}

thread_local! {
    static SCRATCH: RefCell<kernel::GaborScratch> = RefCell::new(kernel::GaborScratch::default());
}

/// Real and imaginary Gabor responses of a 2-D float64 image (`single`: float32 kernel).
#[pyfunction]
pub fn gabor_filter<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    params: GaborArgs,
    mode: &str,
    cval: f64,
    single: bool,
) -> PyResult<Planes<'py>> {
    let g = gabor_of(params);
    let mode = Mode::from_name(mode)?;
    let image = readonly::<f64, Ix2>(image, "image")?;
    let (rows, cols) = (image.shape()[0], image.shape()[1]);
    let (re, im) = (zeros::<f64, Ix2>(py, Ix2(rows, cols))?, zeros::<f64, Ix2>(py, Ix2(rows, cols))?);
    let (mut r, mut i) = (re.readwrite(), im.readwrite());
    let (src, r, i) = (items(&image, "image")?, items_mut(&mut r)?, items_mut(&mut i)?);
    run(py, || {
        SCRATCH.with(|s| kernel::filter(src, rows, cols, &g, mode, cval, single, &mut s.borrow_mut(), r, i))
    })?;
    Ok((re, im))
}

/// Mean and variance of the Gabor magnitude for each filter of `bank`, for each image
/// of a uint8 `(N, H, W)` stack: `(N, 2 * len(bank))`.
#[pyfunction]
pub fn gabor_bank_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    bank: Vec<GaborArgs>,
    mode: &str,
    cval: f64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let bank: Vec<Gabor> = bank.into_iter().map(gabor_of).collect();
    let mode = Mode::from_name(mode)?;
    let stack = Stack::read(images)?;
    let (n, rows, cols) = (stack.n, stack.rows, stack.cols);
    let (row_len, n_threads) = (2 * bank.len(), threads(n_threads));
    compute(py, &stack.images, "images", Ix2(n, row_len), |src, dst| {
        if n == 0 || bank.is_empty() {
            return Ok(());
        }
        let plan = kernel::BankPlan::new(&bank, rows, cols)?;
        crate::parallel::for_each_image(src, rows * cols, dst, row_len, n_threads, |img, row| {
            SCRATCH.with(|s| kernel::bank_stats(img, &plan, mode, cval, &mut s.borrow_mut(), row))
        })
    })
}
