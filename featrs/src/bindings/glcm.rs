//! Bindings of `glcm`: co-occurrence counts, normalisation, properties of a dense
//! matrix, and properties of a uint8 stack without building matrices.
use std::cell::RefCell;

use numpy::{Element, Ix2, Ix4, PyArray2, PyArray4, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{compute, is_array_of, items, items_mut, readonly, run, zeros, Stack};
use crate::error::{FeatError, Result};
use crate::glcm::{self as kernel, Prop};

fn counts_of<'py, T: Element + Copy + Into<u64> + Sync>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    offsets: &[(i64, i64)],
    (n_dist, n_angle): (usize, usize),
    levels: usize,
    symmetric: bool,
) -> PyResult<Bound<'py, PyArray4<u32>>> {
    let image = readonly::<T, Ix2>(image, "image")?;
    let (rows, cols) = (image.shape()[0], image.shape()[1]);
    compute(py, &image, "image", Ix4(levels, levels, n_dist, n_angle), |src, dst| {
        kernel::cooccurrence(src, rows, cols, offsets, levels, symmetric, dst)
    })
}

/// Co-occurrence counts (`graycomatrix` with `normed=False`) of a 2-D unsigned integer
/// image: uint32 `(levels, levels, len(distances), len(angles))`.
#[pyfunction]
pub fn glcm_counts<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    distances: Vec<f64>,
    angles: Vec<f64>,
    levels: usize,
    symmetric: bool,
) -> PyResult<Bound<'py, PyArray4<u32>>> {
    let offsets = kernel::offsets(&distances, &angles)?;
    let dims = (distances.len(), angles.len());
    if is_array_of::<u8>(image) {
        counts_of::<u8>(py, image, &offsets, dims, levels, symmetric)
    } else if is_array_of::<u16>(image) {
        counts_of::<u16>(py, image, &offsets, dims, levels, symmetric)
    } else if is_array_of::<u32>(image) {
        counts_of::<u32>(py, image, &offsets, dims, levels, symmetric)
    } else if is_array_of::<u64>(image) {
        counts_of::<u64>(py, image, &offsets, dims, levels, symmetric)
    } else {
        Err(FeatError::Type("image must be an unsigned integer array (uint8, uint16, uint32 or uint64)".into()).into())
    }
}

/// `normed=True`: uint32 counts `(L, L, D, A)` -> float64 probabilities of the same shape.
#[pyfunction]
pub fn glcm_normalize<'py>(py: Python<'py>, counts: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray4<f64>>> {
    let counts = readonly::<u32, Ix4>(counts, "counts")?;
    let s = counts.shape();
    let (dims, n_offsets) = (Ix4(s[0], s[1], s[2], s[3]), s[2] * s[3]);
    compute(py, &counts, "counts", dims, |src, dst| kernel::normalize(src, n_offsets, dst))
}

type PropsAndUnsure<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<u8>>);

fn props_of<'py, T: Element + Copy + Into<f64> + Sync>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    prop: Prop,
) -> PyResult<PropsAndUnsure<'py>> {
    let p = readonly::<T, Ix4>(p, "P")?;
    let s = p.shape();
    if s[0] != s[1] {
        return Err(FeatError::Value("num_level and num_level2 must be equal.".into()).into());
    }
    let (levels, n_dist, n_angle) = (s[0], s[2], s[3]);
    let out = zeros::<f64, Ix2>(py, Ix2(n_dist, n_angle))?;
    let unsure = zeros::<u8, Ix2>(py, Ix2(n_dist, n_angle))?;
    let (mut o, mut u) = (out.readwrite(), unsure.readwrite());
    let (src, o, u) = (items(&p, "P")?, items_mut(&mut o)?, items_mut(&mut u)?);
    run(py, || kernel::props_dense(src, levels, n_dist * n_angle, prop, o, u))?;
    Ok((out, unsure))
}

/// `graycoprops(P, prop)` of a uint32 or float64 `(L, L, D, A)` matrix: `(D, A)` values
/// and `unsure` flags for correlations the façade must recompute with numpy (see glcm).
#[pyfunction]
pub fn glcm_props_dense<'py>(py: Python<'py>, p: &Bound<'py, PyAny>, prop: &str) -> PyResult<PropsAndUnsure<'py>> {
    let prop = Prop::from_name(prop)?;
    if is_array_of::<u32>(p) {
        props_of::<u32>(py, p, prop)
    } else {
        props_of::<f64>(py, p, prop)
    }
}

thread_local! {
    static SCRATCH: RefCell<kernel::PairScratch> = RefCell::new(kernel::PairScratch::default());
}

/// The offsets and properties a batch call asks for, checked.
fn offsets_and_props(distances: &[f64], angles: &[f64], props: &[String]) -> Result<(Vec<(i64, i64)>, Vec<Prop>)> {
    let props = props.iter().map(|p| Prop::from_name(p)).collect::<Result<Vec<_>>>()?;
    Ok((kernel::offsets(distances, angles)?, props))
}

/// GLCM properties of each image of a uint8 `(N, H, W)` stack: `(N, len(props) *
/// len(distances) * len(angles))`; correlations that need numpy's rounding are NaN.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn glcm_props_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    distances: Vec<f64>,
    angles: Vec<f64>,
    levels: usize,
    symmetric: bool,
    props: Vec<String>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (offsets, props) = offsets_and_props(&distances, &angles, &props)?;
    let spec = kernel::Spec { offsets: &offsets, levels, symmetric, props: &props };
    let stack = Stack::read(images)?;
    let (rows, cols) = (stack.rows, stack.cols);
    stack.each_image(py, spec.len(), n_threads, |img, row| {
        SCRATCH.with(|s| {
            let mut unsure = vec![0u8; offsets.len()];
            kernel::props_from_pairs(img, rows, cols, &spec, &mut s.borrow_mut(), row, &mut unsure)
        })
    })
}

/// GLCM properties of every tile of a `grid x grid` split of each image of a uint8
/// `(N, H, W)` stack: `(N, grid^2 * len(props) * len(distances) * len(angles))`, columns
/// tile-major, then prop, distance, angle; correlations that need numpy's rounding are NaN.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn glcm_props_grid_batch<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    distances: Vec<f64>,
    angles: Vec<f64>,
    levels: usize,
    symmetric: bool,
    props: Vec<String>,
    grid: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (offsets, props) = offsets_and_props(&distances, &angles, &props)?;
    let stack = Stack::read(images)?;
    let (rows, cols) = (stack.rows, stack.cols);
    let tiles = if stack.n == 0 { Vec::new() } else { crate::tiles::tiles(rows, cols, grid)? };
    let spec = kernel::Spec { offsets: &offsets, levels, symmetric, props: &props };
    stack.each_image(py, grid * grid * spec.len(), n_threads, |img, row| {
        SCRATCH.with(|s| {
            let mut unsure = vec![0u8; tiles.len() * offsets.len()];
            kernel::props_grid(img, rows, cols, &tiles, &spec, &mut s.borrow_mut(), row, &mut unsure)
        })
    })
}
