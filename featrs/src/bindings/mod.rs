//! The thin binding layer: numpy arrays in (shapes read from the arrays, dtype and
//! layout checked here), outputs allocated here as numpy arrays, kernels run with the
//! GIL released, every error a [`FeatError`] (mapped to an exception in `error.rs`).
//! No arithmetic belongs here.
use std::panic::{catch_unwind, AssertUnwindSafe};

use numpy::ndarray::Dimension;
use numpy::{
    Element, Ix2, Ix3, PyArray, PyArray2, PyArrayMethods, PyReadonlyArray, PyReadwriteArray, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::error::{from_panic, FeatError, Result};

pub mod gabor;
pub mod glcm;
pub mod hog;
pub mod lbp;

/// Number of threads the batch functions use by default (all cores).
#[pyfunction]
pub fn max_threads() -> usize {
    crate::parallel::default_threads()
}

/// The SIMD instruction set the kernels run with (`FEATRS_SIMD` can lower it).
#[pyfunction]
pub fn simd_path() -> &'static str {
    crate::simd::level().name()
}

/// Run a kernel with the GIL released; a panic becomes a RuntimeError, never a crash.
pub(crate) fn run<R, F>(py: Python<'_>, f: F) -> PyResult<R>
where
    F: FnOnce() -> Result<R> + Send,
    R: Send,
{
    py.detach(|| catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(from_panic(p))))
        .map_err(PyErr::from)
}

/// `None` means all cores.
pub(crate) fn threads(n_threads: Option<usize>) -> usize {
    n_threads.unwrap_or_else(crate::parallel::default_threads)
}

/// dtype name and shape of any numpy array, or a TypeError naming the argument.
fn describe<'py>(obj: &Bound<'py, PyAny>, what: &str) -> Result<(String, Vec<usize>)> {
    let arr = obj
        .cast::<PyUntypedArray>()
        .map_err(|_| FeatError::Type(format!("{what} must be a numpy array, got {}", type_name(obj))))?;
    let dtype = arr.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into());
    Ok((dtype, arr.shape().to_vec()))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Borrow `obj` as a read-only `T` array of `D`'s dimensions, or a FeatError that says why not.
pub(crate) fn readonly<'py, T: Element, D: Dimension>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> Result<PyReadonlyArray<'py, T, D>> {
    match obj.cast::<PyArray<T, D>>() {
        Ok(a) => a.try_readonly().map_err(|e| FeatError::Value(format!("{what} cannot be read: {e}"))),
        Err(_) => {
            let (dtype, shape) = describe(obj, what)?;
            let want_ndim = D::NDIM.map(|n| format!("{n}-D ")).unwrap_or_default();
            let want = std::any::type_name::<T>();
            let msg = format!("{what} must be a {want_ndim}array of {want}, got dtype {dtype} and shape {shape:?}");
            // The right items in the wrong number of dimensions is a bad value, not a bad type.
            if is_array_of::<T>(obj) {
                Err(FeatError::Value(msg))
            } else {
                Err(FeatError::Type(msg))
            }
        }
    }
}

/// Whether `obj` is a numpy array of item type `T` (any dimensions).
pub(crate) fn is_array_of<T: Element>(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyArray<T, numpy::IxDyn>>().is_ok()
}

/// The items of a read-only array, which must be C-contiguous.
pub(crate) fn items<'a, T: Element, D: Dimension>(a: &'a PyReadonlyArray<'_, T, D>, what: &str) -> Result<&'a [T]> {
    a.as_slice().map_err(|_| FeatError::Value(format!("{what} must be C-contiguous")))
}

/// A new zeroed C-ordered array of `dims` for an output.
///
/// Made by `numpy.zeros`, so that running out of memory is a MemoryError, not a crash.
pub(crate) fn zeros<'py, T: Element, D: Dimension>(py: Python<'py>, dims: D) -> Result<Bound<'py, PyArray<T, D>>> {
    let shape = dims.slice().to_vec();
    let bytes = shape.iter().try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d));
    if bytes.is_none_or(|b| b > isize::MAX as usize) {
        return Err(FeatError::Value(format!("an output of shape {shape:?} is too large")));
    }
    let made = PyModule::import(py, "numpy").and_then(|np| np.call_method1("zeros", (shape.clone(), T::get_dtype(py))));
    match made {
        Ok(arr) => arr
            .cast_into::<PyArray<T, D>>()
            .map_err(|_| FeatError::Internal("numpy.zeros made an array of another type".into())),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) => {
            Err(FeatError::Memory(format!("cannot allocate an output of shape {shape:?}")))
        }
        Err(e) => Err(FeatError::from(e)),
    }
}

/// The items of an output array made by [`zeros`].
pub(crate) fn items_mut<'a, T: Element, D: Dimension>(a: &'a mut PyReadwriteArray<'_, T, D>) -> Result<&'a mut [T]> {
    a.as_slice_mut().map_err(|_| FeatError::Internal("a new output array is not contiguous".into()))
}

/// `f(input items, output items)` with the GIL released, into a new zeroed array of
/// `dims`: the one way every binding runs a kernel over a numpy array.
pub(crate) fn compute<'py, T, E, U, D, F>(
    py: Python<'py>,
    input: &PyReadonlyArray<'py, T, E>,
    what: &str,
    dims: D,
    f: F,
) -> PyResult<Bound<'py, PyArray<U, D>>>
where
    T: Element + Sync,
    E: Dimension,
    U: Element + Send,
    D: Dimension,
    F: FnOnce(&[T], &mut [U]) -> Result<()> + Send,
{
    let out = zeros::<U, D>(py, dims)?;
    let mut dst = out.readwrite();
    let (src, dst) = (items(input, what)?, items_mut(&mut dst)?);
    run(py, || f(src, dst))?;
    Ok(out)
}

/// A uint8 `(N, H, W)` stack of images.
pub(crate) struct Stack<'py> {
    pub(crate) images: PyReadonlyArray<'py, u8, Ix3>,
    pub(crate) n: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl<'py> Stack<'py> {
    pub(crate) fn read(images: &Bound<'py, PyAny>) -> Result<Self> {
        let images = readonly::<u8, Ix3>(images, "images")?;
        let s = images.shape();
        let (n, rows, cols) = (s[0], s[1], s[2]);
        Ok(Stack { images, n, rows, cols })
    }

    /// `f(image, row)` for each image, in parallel, into the rows of a new
    /// `(N, row_len)` float64 array.
    pub(crate) fn each_image<F>(
        &self,
        py: Python<'py>,
        row_len: usize,
        n_threads: Option<usize>,
        f: F,
    ) -> PyResult<Bound<'py, PyArray2<f64>>>
    where
        F: Fn(&[u8], &mut [f64]) -> Result<()> + Sync + Send,
    {
        let (image_len, n_threads) = (self.rows * self.cols, threads(n_threads));
        compute(py, &self.images, "images", Ix2(self.n, row_len), |src, dst| {
            crate::parallel::for_each_image(src, image_len, dst, row_len, n_threads, f)
        })
    }
}
