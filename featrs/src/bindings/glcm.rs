//! Bindings of `glcm`: co-occurrence counts, normalisation, properties of a dense
//! matrix, and properties of a uint8 stack without building matrices.
use std::cell::RefCell;

use numpy::{Element, Ix2, Ix3, Ix4, PyArray2, PyArray4, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::{is_array_of, items, items_mut, readonly, run, shape3, threads, zeros};
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
    let out = zeros::<u32, Ix4>(py, Ix4(levels, levels, n_dist, n_angle))?;
    let mut dst = out.readwrite();
    let (src, dst) = (items(&image, "image")?, items_mut(&mut dst)?);
    run(py, || kernel::cooccurrence(src, rows, cols, offsets, levels, symmetric, dst))?;
    Ok(out)
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
    let out = zeros::<f64, Ix4>(py, Ix4(s[0], s[1], s[2], s[3]))?;
    let n_offsets = s[2] * s[3];
    let mut dst = out.readwrite();
    let (src, dst) = (items(&counts, "counts")?, items_mut(&mut dst)?);
    run(py, || kernel::normalize(src, n_offsets, dst))?;
    Ok(out)
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

fn parse_props(props: &[String]) -> Result<Vec<Prop>> {
    props.iter().map(|p| Prop::from_name(p)).collect()
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
    let props = parse_props(&props)?;
    let offsets = kernel::offsets(&distances, &angles)?;
    let images = readonly::<u8, Ix3>(images, "images")?;
    let [n, rows, cols] = shape3(&images);
    let row_len = props.len() * offsets.len();
    let out = zeros::<f64, Ix2>(py, Ix2(n, row_len))?;
    let mut dst = out.readwrite();
    let (src, dst) = (items(&images, "images")?, items_mut(&mut dst)?);
    let n_threads = threads(n_threads);
    run(py, || {
        crate::parallel::for_each_image(src, rows * cols, dst, row_len, n_threads, |img, row| {
            SCRATCH.with(|s| {
                let mut unsure = vec![0u8; offsets.len()];
                let mut s = s.borrow_mut();
                kernel::props_from_pairs(img, rows, cols, &offsets, levels, symmetric, &props, &mut s, row, &mut unsure)
            })
        })
    })?;
    Ok(out)
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
    let props = parse_props(&props)?;
    let offsets = kernel::offsets(&distances, &angles)?;
    let images = readonly::<u8, Ix3>(images, "images")?;
    let [n, rows, cols] = shape3(&images);
    let tiles = if n == 0 { Vec::new() } else { crate::tiles::tiles(rows, cols, grid)? };
    let row_len = grid * grid * props.len() * offsets.len();
    let out = zeros::<f64, Ix2>(py, Ix2(n, row_len))?;
    let mut dst = out.readwrite();
    let (src, dst) = (items(&images, "images")?, items_mut(&mut dst)?);
    let n_threads = threads(n_threads);
    run(py, || {
        crate::parallel::for_each_image(src, rows * cols, dst, row_len, n_threads, |img, row| {
            SCRATCH.with(|s| {
                let mut unsure = vec![0u8; tiles.len() * offsets.len()];
                let mut s = s.borrow_mut();
                kernel::props_grid(img, rows, cols, &tiles, &offsets, levels, symmetric, &props, &mut s, row, &mut unsure)
            })
        })
    })?;
    Ok(out)
}
