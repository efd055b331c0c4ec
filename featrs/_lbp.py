"""Local binary patterns: ``skimage.feature.local_binary_pattern``'s codes from a Rust kernel."""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from . import _featrs, _tiles, _validate
from ._options import LBP_METHODS as METHODS
from ._options import lbp_n_bins

#: Largest P per method: default/ror codes are skimage's int32 sums of 2**i.
MAX_POINTS = {"default": 31, "ror": 31, "uniform": 64, "nri_uniform": 64, "var": 64}


def local_binary_pattern(image, P, R, method="default"):
    """Compute the local binary patterns (LBP) of an image, as skimage does.

    Parameters
    ----------
    image : (M, N) array_like
        2-D grayscale image; uint8 is read directly, anything else is converted to
        float64 like skimage (floats must be finite; skimage warns about floats and so
        do we).
    P : int
        Number of circularly symmetric neighbour points (1..31 for ``default`` and
        ``ror``, 1..64 otherwise).
    R : float
        Radius of the circle (finite).
    method : {'default', 'ror', 'uniform', 'nri_uniform', 'var'}, optional
        Pattern coding, as in skimage (case-insensitive).

    Returns
    -------
    output : (M, N) ndarray of float64
        LBP codes; for ``var`` the local variance (NaN where it is zero).

    Raises
    ------
    ValueError
        Image not 2-D or empty, non-finite pixels, P out of range, non-finite R,
        unknown method.
    TypeError
        Non-numeric image, non-integer P, non-real R, non-string method.
    """
    method = _method(method)
    P = _points(P, method)
    R = _radius(R)
    image = np.asanyarray(image)
    if image.size == 0:
        raise ValueError("The parameter `image` cannot be an empty array")
    if image.ndim != 2:
        raise ValueError(f"The parameter `image` must be a 2-dimensional array, got shape {image.shape}")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must be a real numeric array, got dtype {image.dtype}")
    if image.dtype.kind == "f":
        warnings.warn(
            "Applying `local_binary_pattern` to floating-point images may "
            "give unexpected results when small numerical differences between "
            "adjacent pixels are present. It is recommended to use this "
            "function with images of integer dtype.",
            stacklevel=2,
        )
    if image.dtype == np.uint8:
        image = np.ascontiguousarray(image)
    else:
        image = np.ascontiguousarray(image, dtype=np.float64)
        if not np.isfinite(image).all():
            raise ValueError("image must contain only finite values")
    rp, cp = neighbour_offsets(P, R)
    return _featrs.lbp_image(image, P, rp, cp, method)


def lbp_histogram_batch(images, P=8, R=1.0, method="uniform", n_threads=None):
    """Normalized histogram of ``skimage.feature.local_binary_pattern`` codes.

    Same signature and output as :func:`featrs.reference.lbp_histogram_batch`: bin ``k``
    counts pixels whose code is ``k``; there are ``lbp_n_bins(P, method)`` bins and each
    row sums to 1. Images run in parallel with the GIL released.

    Parameters
    ----------
    images : (N, H, W) uint8 array_like
    P, R : int, float
        Neighbour count and radius, as in :func:`local_binary_pattern`.
    method : {'default', 'ror', 'uniform', 'nri_uniform'}, optional
    n_threads : int or None, optional
        Worker threads; None uses all cores.

    Returns
    -------
    ndarray of float64, shape (N, n_bins)
    """
    images = _validate.image_stack(images)
    n_threads = _validate.n_threads(n_threads)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}")
    P = _points(P, method.lower())
    n_bins = lbp_n_bins(P, method)
    R = _radius(R)
    if not len(images):
        return np.empty((0, n_bins), np.float64)
    rp, cp = neighbour_offsets(P, R)
    return _featrs.lbp_histogram_batch(images, P, rp, cp, method, n_threads)


def lbp_histogram_grid_batch(images, P, R, method="uniform", grid=1, n_threads=None):
    """Per-tile LBP code histograms for several ``(P, R)`` pairs in one pass.

    For each pair, then each tile of a ``grid x grid`` split (edges at
    ``linspace(0, side, grid + 1)`` truncated to int, tiles row-major), the normalized
    histogram :func:`lbp_histogram_batch` gives for that tile alone (zeros outside the
    tile, as when scikit-image is called on the tile). Same output as
    :func:`featrs.reference.lbp_histogram_grid_batch`.

    Parameters
    ----------
    images : (N, H, W) uint8 array_like
    P : int or sequence of int
        Neighbour counts, paired element-wise with ``R``.
    R : float or sequence of float
        Radii.
    method : {'default', 'ror', 'uniform', 'nri_uniform'}, optional
    grid : int, optional
        Tiles per side, in ``[1, min(H, W)]``.
    n_threads : int or None, optional
        Worker threads; None uses all cores.

    Returns
    -------
    ndarray of float64, shape (N, grid**2 * sum(lbp_n_bins(P_k, method)))
        Columns: pair-major, then tile, then code.
    """
    images = _validate.image_stack(images)
    n_threads = _validate.n_threads(n_threads)
    pairs = _pairs(P, R)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}")
    method = method.lower()
    grid = _tiles.grid_size(grid, images.shape[1], images.shape[2])
    ops = []
    for p, r in pairs:
        p = _points(p, method)
        lbp_n_bins(p, method)  # raises for 'var' and unknown methods
        rp, cp = neighbour_offsets(p, _radius(r))
        ops.append((p, rp.tolist(), cp.tolist()))
    return _featrs.lbp_histogram_grid_batch(images, ops, method, grid, n_threads)


def _pairs(P, R):
    """``(P, R)`` scalars or equal-length sequences as a list of pairs."""
    ps = list(P) if isinstance(P, (list, tuple, np.ndarray)) else [P]
    rs = list(R) if isinstance(R, (list, tuple, np.ndarray)) else [R]
    if not ps or len(ps) != len(rs):
        raise ValueError(f"P and R must pair up (as many of each, at least one), got {len(ps)} and {len(rs)}")
    return list(zip(ps, rs))


@functools.lru_cache(maxsize=64)
def neighbour_offsets(P, R):
    """skimage's neighbour offsets ``(rp, cp)``: the circle of radius R, rounded to 5 decimals.

    Computed with numpy exactly as ``skimage.feature._texture`` does, so the kernel
    interpolates at bit-identical positions. Cached (read-only arrays): numpy's
    trigonometry costs more than the kernel on small images.
    """
    angles = 2 * np.pi * np.arange(P, dtype=np.float64) / P
    rp = np.ascontiguousarray(np.round(-R * np.sin(angles), 5))
    cp = np.ascontiguousarray(np.round(R * np.cos(angles), 5))
    rp.flags.writeable = False
    cp.flags.writeable = False
    return rp, cp


def _method(method):
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}")
    if method.lower() not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method.lower()


def _points(P, method):
    return _validate.integer(P, "P", 1, MAX_POINTS.get(method, 64))


def _radius(R):
    if isinstance(R, (bool, np.bool_)) or not isinstance(R, (int, float, np.integer, np.floating)):
        raise TypeError(f"R must be a real number, got {R!r}")
    R = float(R)
    if not math.isfinite(R):
        raise ValueError(f"R must be finite, got {R}")
    return R
