"""Gabor filters: scikit-image's API and numbers, Rust kernels.

:func:`gabor_kernel` and :func:`gabor` are drop-in replacements for
``skimage.filters.gabor_kernel`` / ``gabor``; :func:`gabor_bank_batch` is the batch API
pinned by :mod:`featrs.reference`. The kernel's size and sigmas are computed here with
scikit-image's own arithmetic, so both libraries filter with the same kernel.
"""
from __future__ import annotations

import math

import numpy as np

from . import _featrs, _validate
from ._options import GABOR_FREQUENCIES, GABOR_THETAS

#: scipy.ndimage boundary modes (and the ``grid-*`` synonyms its filters accept).
MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant", "grid-wrap")

# Beyond this many kernel elements the parameters are absurd (and scikit-image would try
# to allocate gigabytes).
_MAX_KERNEL_ELEMENTS = 1 << 26


def _real(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _sigma_prefactor(bandwidth: float) -> float:
    b = bandwidth
    return 1.0 / np.pi * math.sqrt(math.log(2) / 2.0) * (2.0**b + 1) / (2.0**b - 1)


def _kernel_params(frequency, theta, bandwidth, sigma_x, sigma_y, n_stds, offset) -> tuple:
    """Validated kernel parameters, derived exactly as scikit-image derives them.

    Returns ``(frequency, sigma_x, sigma_y, cos(theta), sin(theta), offset, x0, y0)``
    where the kernel spans ``[-y0, y0] x [-x0, x0]``.
    """
    frequency = _real("frequency", frequency)
    if frequency < 0:
        raise ValueError(f"frequency must be >= 0 (cycles per pixel), got {frequency}")
    if frequency == 0 and (sigma_x is None or sigma_y is None):
        # scikit-image divides by the frequency here (ZeroDivisionError).
        raise ValueError("frequency 0 (a plain Gaussian) needs sigma_x and sigma_y: the bandwidth "
                         "sets the sigmas through 1 / frequency")
    theta = _real("theta", theta)
    n_stds = _real("n_stds", n_stds)
    offset = _real("offset", offset)
    if sigma_x is None or sigma_y is None:
        bandwidth = _real("bandwidth", bandwidth)
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    sigma_x = _sigma_prefactor(bandwidth) / frequency if sigma_x is None else _real("sigma_x", sigma_x)
    sigma_y = _sigma_prefactor(bandwidth) / frequency if sigma_y is None else _real("sigma_y", sigma_y)
    for name, sigma in (("sigma_x", sigma_x), ("sigma_y", sigma_y)):
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"{name} must be finite and > 0, got {sigma}")
    ct = math.cos(theta)
    st = math.sin(theta)
    x0 = math.ceil(max(abs(n_stds * sigma_x * ct), abs(n_stds * sigma_y * st), 1))
    y0 = math.ceil(max(abs(n_stds * sigma_y * ct), abs(n_stds * sigma_x * st), 1))
    if (2 * x0 + 1) * (2 * y0 + 1) > _MAX_KERNEL_ELEMENTS:
        raise ValueError(f"Gabor kernel of {2 * y0 + 1} x {2 * x0 + 1} is too large "
                         f"(at most {_MAX_KERNEL_ELEMENTS} elements): frequency, sigma or n_stds is absurd")
    return (frequency, sigma_x, sigma_y, ct, st, offset, x0, y0)


def _check_mode(mode) -> str:
    if mode not in MODES:
        # scipy.ndimage raises RuntimeError here; so does scikit-image's gabor.
        raise RuntimeError(f"boundary mode not supported: {mode!r} (use one of {', '.join(MODES[:5])})")
    return mode


def gabor_kernel(frequency, theta=0, bandwidth=1, sigma_x=None, sigma_y=None, n_stds=3, offset=0,
                 dtype=np.complex128):
    """Return a complex 2-D Gabor filter kernel.

    Same as ``skimage.filters.gabor_kernel``: a Gaussian envelope (standard deviations
    ``sigma_x``, ``sigma_y`` before rotation by ``theta``) times the complex harmonic
    ``exp(i (2 pi frequency x' + offset))``, scaled by ``1 / (2 pi sigma_x sigma_y)``.

    Parameters
    ----------
    frequency : float
        Spatial frequency of the harmonic, in cycles per pixel (>= 0; 0, a plain Gaussian,
        needs ``sigma_x`` and ``sigma_y``).
    theta : float, optional
        Orientation in radians; 0 puts the harmonic along x.
    bandwidth : float, optional
        Bandwidth (> 0) setting the sigmas that are None: ``sigma = c(bandwidth) / frequency``.
    sigma_x, sigma_y : float, optional
        Standard deviations (> 0) along x and y before rotation.
    n_stds : float, optional
        The kernel spans ``n_stds`` standard deviations.
    offset : float, optional
        Phase offset of the harmonic in radians.
    dtype : {np.complex64, np.complex128}, optional
        Precision of the kernel.

    Returns
    -------
    g : ndarray of dtype `dtype`, shape (2 y0 + 1, 2 x0 + 1)

    Raises
    ------
    ValueError
        Non-complex ``dtype``; non-finite parameters; ``frequency`` < 0, or 0 without both
        sigmas; ``bandwidth`` or a sigma <= 0; a kernel of more than 2**26 elements.
    """
    params = _kernel_params(frequency, theta, bandwidth, sigma_x, sigma_y, n_stds, offset)
    if np.dtype(dtype).kind != "c":
        raise ValueError("dtype must be complex")
    return _kernel(params, dtype)


def _kernel(params: tuple, dtype) -> np.ndarray:
    _, sigma_x, sigma_y, _, _, _, _, _ = params
    re, im = _featrs.gabor_kernel_unscaled(params)
    g = np.empty(re.shape, dtype=dtype)
    g.real = re
    g.imag = im
    # The scaling step of scikit-image, in the kernel's own precision.
    g *= 1 / (2 * np.pi * sigma_x * sigma_y)
    return g


def gabor(image, frequency, theta=0, bandwidth=1, sigma_x=None, sigma_y=None, n_stds=3, offset=0,
          mode="reflect", cval=0):
    """Return the real and imaginary responses to a Gabor filter.

    Same as ``skimage.filters.gabor``: ``scipy.ndimage.convolve`` of the image with the
    real and imaginary parts of :func:`gabor_kernel`, and the same dtypes: float16/32
    images give float32 (their kernel is complex64), float64 gives float64, integer and
    bool images are *not* cast to float (the response is truncated to the image's dtype
    as scipy does), complex images give complex responses.

    Parameters
    ----------
    image : 2-D array
        Input image (finite values).
    frequency, theta, bandwidth, sigma_x, sigma_y, n_stds, offset
        Kernel parameters, see :func:`gabor_kernel`.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}, optional
        How the image is extended beyond its border (scipy.ndimage's modes).
    cval : float, optional
        Value outside the image for ``mode='constant'``.

    Returns
    -------
    real, imag : ndarray
        Responses of the image's shape.

    Raises
    ------
    ValueError
        Empty or non-2-D image, non-finite image values, bad kernel parameters.
    RuntimeError
        Unknown ``mode`` or an unsupported image dtype (as scipy.ndimage raises).
    """
    image = np.asanyarray(image)
    if image.size == 0:
        raise ValueError("The parameter `image` cannot be an empty array")
    if image.ndim != 2:
        raise ValueError("The parameter `image` must be a 2-dimensional array")
    params = _kernel_params(frequency, theta, bandwidth, sigma_x, sigma_y, n_stds, offset)
    mode = _check_mode(mode)
    constant = mode in ("constant", "grid-constant")
    kind = image.dtype.kind
    if kind == "c" and image.dtype.itemsize <= 16:
        # scipy filters the real and imaginary parts, with cval's matching part.
        cval_re, cval_im = (_real("cval", np.real(cval)), _real("cval", np.imag(cval))) if constant else (0.0, 0.0)
        parts = [_respond(np.real(image), params, mode, cval_re, False),
                 _respond(np.imag(image), params, mode, cval_im, False)]
        return tuple((re + 1j * im).astype(image.dtype) for re, im in zip(*parts))
    cval = _real("cval", cval) if constant else 0.0
    if kind == "f":
        out_dtype = np.float32 if image.dtype.itemsize <= 4 else np.float64
        real, imag = _respond(image, params, mode, cval, out_dtype == np.float32)
        return real.astype(out_dtype), imag.astype(out_dtype)
    if kind in "biu":
        real, imag = _respond(image, params, mode, cval, False)
        return _cast_like_scipy(real, image.dtype), _cast_like_scipy(imag, image.dtype)
    raise RuntimeError(f"array type not supported: gabor cannot filter a {image.dtype} image")


def _respond(image: np.ndarray, params: tuple, mode: str, cval: float, single: bool):
    """Float64 real and imaginary responses of a real image (``single``: float32 kernel)."""
    work = np.ascontiguousarray(image, dtype=np.float64)
    return _featrs.gabor_filter(work, params, mode, cval, single)


def _cast_like_scipy(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float64 -> integer/bool output as scipy.ndimage's C casts do on x86-64.

    Truncation toward zero, then wrap-around: 8/16-bit types and bool go through int32
    (out of range: INT32_MIN), uint32 through int64, uint64 is exact on [-2**63, 2**64).
    Responses beyond that (|value| >= 2**63) are undefined behaviour in scipy's C.
    """
    t = np.trunc(values)
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or dtype.itemsize <= 2 or dtype == np.int32:
        ok = (t >= -2.0**31) & (t < 2.0**31)
        as_i32 = np.where(ok, t, -2.0**31).astype(np.int64).astype(np.int32)
        if dtype.kind == "b":
            return as_i32.astype(np.uint8) != 0
        return as_i32.astype(dtype)
    ok = (t >= -2.0**63) & (t < 2.0**63)
    as_i64 = np.where(ok, t, -2.0**63).astype(np.int64)
    if dtype == np.int64:
        return as_i64
    if dtype == np.uint32:
        return np.where(ok, as_i64, 0).astype(np.uint32)
    high = (t >= 2.0**63) & (t < 2.0**64)
    low = (t > -(2.0**64)) & (t < -(2.0**63))
    out = as_i64.astype(np.uint64)
    out[high] = t[high].astype(np.uint64)
    out[low] = (t[low] + 2.0**64).astype(np.uint64)
    out[~(ok | high | low)] = 0
    return out


def gabor_bank_batch(images, frequencies=GABOR_FREQUENCIES, thetas=GABOR_THETAS, bandwidth=1,
                     n_stds=3, mode="reflect", cval=0, n_threads=None):
    """Mean and variance of the Gabor response magnitude over a filter bank.

    Same signature and output as :func:`featrs.reference.gabor_bank_batch`: images are
    scaled to [0, 1] (``/ 255``); for each frequency, then each theta, two columns
    ``mean(|g|)`` and ``var(|g|)`` of the complex response ``g`` of :func:`gabor`.
    Images are processed in parallel.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W)
    frequencies, thetas : sequence of float
        The bank: every frequency (> 0) with every orientation (radians).
    bandwidth, n_stds : float
        Kernel parameters, see :func:`gabor_kernel`.
    mode, cval
        Boundary handling, see :func:`gabor`.
    n_threads : int or None
        Worker threads; None means all cores.

    Returns
    -------
    ndarray of float64, shape (N, 2 * len(frequencies) * len(thetas))
    """
    images = _validate.image_stack(images)
    n_threads = _validate.n_threads(n_threads)
    mode = _check_mode(mode)
    cval = _real("cval", cval) if mode in ("constant", "grid-constant") else 0.0
    bank = [_kernel_params(f, t, bandwidth, None, None, n_stds, 0) for f in frequencies for t in thetas]
    return _featrs.gabor_bank_batch(images, bank, mode, cval, n_threads)
