"""scikit-image reference for featrs' batch functions.

Every function here has the same name, signature and output layout as its Rust-backed
twin in :mod:`featrs`; the parity tests compare the two and the consumer's
``--backend skimage`` runs these. They loop over images in Python and ignore
``n_threads`` (after validating it).
"""
from __future__ import annotations

import numpy as np

from . import _tiles, _validate
from ._options import GABOR_FREQUENCIES, GABOR_THETAS, GLCM_ANGLES, lbp_n_bins
from ._options import GLCM_DEFAULT_PROPS as GLCM_PROPS

def hog_batch(images, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
              block_norm="L2-Hys", transform_sqrt=False, n_threads=None):
    """HOG feature vector of each image: ``skimage.feature.hog(..., feature_vector=True)``.

    Returns
    -------
    ndarray of float64, shape (N, D)
    """
    from skimage.feature import hog

    images = _validate.image_stack(images)
    _validate.n_threads(n_threads)
    rows = [hog(img, orientations=orientations, pixels_per_cell=pixels_per_cell,
                cells_per_block=cells_per_block, block_norm=block_norm,
                transform_sqrt=transform_sqrt, feature_vector=True) for img in images]
    return _stack(rows, len(images))


def lbp_histogram_batch(images, P=8, R=1.0, method="uniform", n_threads=None):
    """Normalized histogram of ``skimage.feature.local_binary_pattern`` codes.

    Bin ``k`` counts pixels whose code is ``k``; there are :func:`lbp_n_bins` bins and
    each row sums to 1.
    """
    from skimage.feature import local_binary_pattern

    images = _validate.image_stack(images)
    _validate.n_threads(n_threads)
    n_bins = lbp_n_bins(P, method)
    out = np.empty((len(images), n_bins), np.float64)
    for i, img in enumerate(images):
        codes = local_binary_pattern(img, P, R, method=method).astype(np.int64)
        out[i] = np.bincount(codes.ravel(), minlength=n_bins)[:n_bins] / codes.size
    return out


def lbp_histogram_grid_batch(images, P, R, method="uniform", grid=1, n_threads=None):
    """Per-tile LBP histograms: :func:`lbp_histogram_batch` of each tile, for each ``(P, R)``.

    Columns are pair-major, then tile (row-major, edges at ``linspace(0, side, grid + 1)``
    truncated to int), then code.
    """
    from ._lbp import _pairs

    images = _validate.image_stack(images)
    _validate.n_threads(n_threads)
    grid = _tiles.grid_size(grid, images.shape[1], images.shape[2])
    slices = _tiles.tile_slices(images.shape[1], images.shape[2], grid)
    blocks = [lbp_histogram_batch(np.ascontiguousarray(images[:, rs, cs]), p, r, method)
              for p, r in _pairs(P, R) for rs, cs in slices]
    return np.hstack(blocks)


def glcm_props_grid_batch(images, distances=(1,), angles=GLCM_ANGLES, levels=256, symmetric=True,
                          normed=True, props=GLCM_PROPS, grid=1, n_threads=None):
    """Per-tile GLCM properties: :func:`glcm_props_batch` of each tile, tiles concatenated.

    Columns are tile-major (row-major tiles, edges at ``linspace(0, side, grid + 1)``
    truncated to int), then prop, distance, angle.
    """
    images = _validate.image_stack(images)
    _validate.n_threads(n_threads)
    grid = _tiles.grid_size(grid, images.shape[1], images.shape[2])
    blocks = [glcm_props_batch(np.ascontiguousarray(images[:, rs, cs]), distances, angles, levels, symmetric,
                               normed, props)
              for rs, cs in _tiles.tile_slices(images.shape[1], images.shape[2], grid)]
    return np.hstack(blocks)


def glcm_props_batch(images, distances=(1,), angles=GLCM_ANGLES, levels=256, symmetric=True,
                     normed=True, props=GLCM_PROPS, n_threads=None):
    """GLCM texture properties: for each prop, ``graycoprops(P, prop).ravel()``.

    Columns are prop-major, then distance, then angle:
    ``len(props) * len(distances) * len(angles)`` values per image.
    """
    from skimage.feature import graycomatrix, graycoprops

    # skimage's Cython GLCM needs a writable buffer; a read-only (e.g. Arrow-backed) stack is copied.
    images = np.require(_validate.image_stack(images), requirements=["C", "W"])
    _validate.n_threads(n_threads)
    rows = []
    for img in images:
        P = graycomatrix(img, distances, angles, levels=levels, symmetric=symmetric, normed=normed)
        rows.append(np.concatenate([graycoprops(P, p).ravel() for p in props]))
    return _stack(rows, len(images))


def gabor_bank_batch(images, frequencies=GABOR_FREQUENCIES, thetas=GABOR_THETAS, bandwidth=1,
                     n_stds=3, mode="reflect", cval=0, n_threads=None):
    """Mean and variance of the Gabor response magnitude over a filter bank.

    Images are scaled to float64 in [0, 1] (``img_as_float``). For each frequency, then
    each theta, two columns: ``mean(|g|)`` and ``var(|g|)`` where ``g`` is the complex
    response of ``skimage.filters.gabor``: ``2 * len(frequencies) * len(thetas)`` values.
    """
    from skimage.filters import gabor

    images = _validate.image_stack(images)
    _validate.n_threads(n_threads)
    out = np.empty((len(images), 2 * len(frequencies) * len(thetas)), np.float64)
    for i, img in enumerate(images):
        x = img.astype(np.float64) / 255.0
        col = 0
        for f in frequencies:
            for t in thetas:
                real, imag = gabor(x, f, theta=t, bandwidth=bandwidth, n_stds=n_stds, mode=mode, cval=cval)
                mag = np.hypot(real, imag)
                out[i, col] = mag.mean()
                out[i, col + 1] = mag.var()
                col += 2
    return out


def _stack(rows, n):
    if n == 0:
        return np.empty((0, 0), np.float64)
    return np.asarray(np.stack(rows), dtype=np.float64)
