"""Gray-level co-occurrence matrices: scikit-image's API and numbers, Rust kernels.

:func:`graycomatrix` and :func:`graycoprops` are drop-in replacements for
``skimage.feature.graycomatrix`` / ``graycoprops`` (same names, signatures, defaults,
exceptions); :func:`glcm_props_batch` is the batch API pinned by :mod:`featrs.reference`.
"""
from __future__ import annotations

import operator

import numpy as np

from . import _featrs, _tiles, _validate
from ._options import GLCM_ANGLES, GLCM_DEFAULT_PROPS
from ._options import GLCM_PROPS as PROPS

# Signed images are checked non-negative, then read through the unsigned view.
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _check_nd(array, ndim: int, arg_name: str) -> np.ndarray:
    """scikit-image's ``check_nD``: ValueError for an empty array or the wrong ndim."""
    array = np.asanyarray(array)
    if array.size == 0:
        raise ValueError(f"The parameter `{arg_name}` cannot be an empty array")
    if array.ndim != ndim:
        raise ValueError(f"The parameter `{arg_name}` must be a {ndim}-dimensional array")
    return array


def _offsets_args(distances, angles):
    distances = _check_nd(distances, 1, "distances")
    angles = _check_nd(angles, 1, "angles")
    distances = np.ascontiguousarray(distances, dtype=np.float64)
    angles = np.ascontiguousarray(angles, dtype=np.float64)
    for name, values in (("distances", distances), ("angles", angles)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite, got {values.tolist()}")
    return distances, angles


def graycomatrix(image, distances, angles, levels=None, symmetric=False, normed=False):
    """Calculate the gray-level co-occurrence matrix.

    Same as ``skimage.feature.graycomatrix``: ``P[i, j, d, a]`` counts the pixels of
    level ``i`` whose neighbour at distance ``distances[d]`` and angle ``angles[a]``
    (offset ``(round(sin(a) * d), round(cos(a) * d))`` in (row, col), rounded half away
    from zero) has level ``j``.

    Parameters
    ----------
    image : array_like
        2-D integer image with values in ``[0, levels - 1]`` (bool is read as 0/1).
    distances : array_like
        1-D list of pixel pair distance offsets.
    angles : array_like
        1-D list of pixel pair angles in radians.
    levels : int, optional
        Number of gray levels; required for images other than uint8/int8, 256 if None.
    symmetric : bool, optional
        If True, ``P[:, :, d, a]`` is made symmetric by adding its transpose.
    normed : bool, optional
        If True, each ``P[:, :, d, a]`` is divided by its sum.

    Returns
    -------
    P : ndarray, shape (levels, levels, len(distances), len(angles))
        uint32 counts, or float64 if ``normed``.

    Raises
    ------
    ValueError
        Empty or non-2-D image, empty or non-1-D distances/angles, non-finite
        distances/angles, float image, negative values, values >= ``levels``, or
        ``levels`` missing for an image wider than 8 bits.
    TypeError
        Non-integer ``levels`` or an image that is not integer-typed.
    """
    image = _check_nd(image, 2, "image")
    distances, angles = _offsets_args(distances, angles)
    image = np.ascontiguousarray(image)
    if np.issubdtype(image.dtype, np.floating):
        raise ValueError("Float images are not supported by graycomatrix. "
                         "Convert the image to an unsigned integer type.")
    if image.dtype not in (np.uint8, np.int8) and levels is None:
        raise ValueError("The levels argument is required for data types other than uint8. "
                         "The resulting matrix will be at least levels ** 2 in size.")
    if image.dtype.kind not in "biu":
        raise TypeError(f"graycomatrix needs an integer image, got dtype {image.dtype}")
    if image.dtype.kind == "i" and np.any(image < 0):
        raise ValueError("Negative-valued images are not supported.")
    levels = 256 if levels is None else operator.index(levels)
    if image.max() >= levels:
        raise ValueError("The maximum grayscale value in the image should be "
                         "smaller than the number of levels.")
    unsigned = image.view(_UNSIGNED[image.dtype.itemsize])
    counts = _featrs.glcm_counts(unsigned, distances.tolist(), angles.tolist(), levels, bool(symmetric))
    return _featrs.glcm_normalize(counts) if normed else counts


def graycoprops(P, prop="contrast"):
    """Calculate a texture property of a GLCM.

    Same as ``skimage.feature.graycoprops``: each ``P[:, :, d, a]`` is normalized to sum
    1, then e.g. contrast is ``sum P[i, j] (i - j)^2``; see scikit-image for all formulas.

    Parameters
    ----------
    P : ndarray, shape (levels, levels, n_distances, n_angles)
        Co-occurrence histogram, e.g. from :func:`graycomatrix`.
    prop : {'contrast', 'dissimilarity', 'homogeneity', 'energy', 'correlation', 'ASM', \
'mean', 'variance', 'std', 'entropy'}, optional
        The property to compute (default 'contrast').

    Returns
    -------
    results : ndarray of float64, shape (n_distances, n_angles)

    Raises
    ------
    ValueError
        ``P`` empty, not 4-D or not square in its first two axes, or an unknown ``prop``.
    """
    P = _check_nd(P, 4, "P")
    num_level, num_level2, num_dist, num_angle = P.shape
    if num_level != num_level2:
        raise ValueError("num_level and num_level2 must be equal.")
    if prop not in PROPS:
        raise ValueError(f"{prop} is an invalid property")
    if P.dtype not in (np.uint32, np.float64):
        P = P.astype(np.float64)
    P = np.ascontiguousarray(P)
    out, unsure = _featrs.glcm_props_dense(P, prop)
    if unsure.any():
        mask = unsure.astype(bool)
        out[mask] = _correlation_like_skimage(P)[mask]
    return out


def _correlation_like_skimage(P) -> np.ndarray:
    """scikit-image's correlation, numpy operation for numpy operation.

    Only used where a standard deviation is (almost) zero: there scikit-image compares
    rounding noise with 1e-15, and only the same float operations reproduce its answer.
    """
    P = P.astype(np.float64)
    num_level, _, num_dist, num_angle = P.shape
    glcm_sums = np.sum(P, axis=(0, 1), keepdims=True)
    glcm_sums[glcm_sums == 0] = 1
    P /= glcm_sums
    results = np.zeros((num_dist, num_angle), dtype=np.float64)
    I = np.array(range(num_level)).reshape((num_level, 1, 1, 1))  # noqa: E741
    J = np.array(range(num_level)).reshape((1, num_level, 1, 1))
    diff_i = I - np.sum(I * P, axis=(0, 1))
    diff_j = J - np.sum(J * P, axis=(0, 1))
    std_i = np.sqrt(np.sum(P * (diff_i) ** 2, axis=(0, 1)))
    std_j = np.sqrt(np.sum(P * (diff_j) ** 2, axis=(0, 1)))
    cov = np.sum(P * (diff_i * diff_j), axis=(0, 1))
    mask_0 = std_i < 1e-15
    mask_0[std_j < 1e-15] = True
    results[mask_0] = 1
    mask_1 = ~mask_0
    results[mask_1] = cov[mask_1] / (std_i[mask_1] * std_j[mask_1])
    return results


def glcm_props_batch(images, distances=(1,), angles=GLCM_ANGLES, levels=256, symmetric=True,
                     normed=True, props=GLCM_DEFAULT_PROPS, n_threads=None):
    """GLCM texture properties of each image: ``graycoprops(P, prop).ravel()`` per prop.

    Same signature and output as :func:`featrs.reference.glcm_props_batch`; images are
    processed in parallel without building the matrices (properties come from exact
    integer pair statistics).

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W)
    distances, angles : sequence of float
        Pixel pair distances and angles (radians), as for :func:`graycomatrix`.
    levels : int or None
        Number of gray levels (values must be below it); None means 256.
    symmetric, normed : bool
        As for :func:`graycomatrix` (``normed`` does not change the properties).
    props : sequence of str
        Property names, see :func:`graycoprops`.
    n_threads : int or None
        Worker threads; None means all cores.

    Returns
    -------
    ndarray of float64, shape (N, len(props) * len(distances) * len(angles))
        Columns are prop-major, then distance, then angle.
    """
    images, distances, angles, levels, props, n_threads = _batch_args(images, distances, angles, levels, props,
                                                                      n_threads)
    if len(images) == 0:
        return np.empty((0, 0), dtype=np.float64)
    out = _featrs.glcm_props_batch(images, distances.tolist(), angles.tolist(), levels,
                                   bool(symmetric), props, n_threads)
    if "correlation" in props:
        _fill_unsure_correlations(images, out, props, distances, angles, levels, symmetric, normed)
    return out


def glcm_props_grid_batch(images, distances=(1,), angles=GLCM_ANGLES, levels=256, symmetric=True,
                          normed=True, props=GLCM_DEFAULT_PROPS, grid=1, n_threads=None):
    """GLCM properties of every tile of a ``grid x grid`` split, in one call.

    Each tile (edges at ``linspace(0, side, grid + 1)`` truncated to int, row-major) is
    an image of its own, as when :func:`glcm_props_batch` is called on the tile stack.
    Same output as :func:`featrs.reference.glcm_props_grid_batch`. At ``levels <= 64``
    the properties come from dense ``levels x levels`` counts per offset.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W)
        Values below ``levels`` (quantize first, e.g. ``v * levels >> 8``).
    distances, angles, levels, symmetric, normed, props, n_threads
        As for :func:`glcm_props_batch`.
    grid : int
        Tiles per side, in ``[1, min(H, W)]``.

    Returns
    -------
    ndarray of float64, shape (N, grid**2 * len(props) * len(distances) * len(angles))
        Columns are tile-major, then prop, distance, angle.
    """
    images, distances, angles, levels, props, n_threads = _batch_args(images, distances, angles, levels, props,
                                                                      n_threads)
    grid = _tiles.grid_size(grid, images.shape[1], images.shape[2])
    if len(images) == 0:
        return np.empty((0, 0), dtype=np.float64)
    out = _featrs.glcm_props_grid_batch(images, distances.tolist(), angles.tolist(), levels, bool(symmetric),
                                        props, grid, n_threads)
    if "correlation" in props:
        width = len(props) * len(distances) * len(angles)
        for t, (rs, cs) in enumerate(_tiles.tile_slices(images.shape[1], images.shape[2], grid)):
            block = out[:, t * width:(t + 1) * width]
            if np.isnan(block).any():
                _fill_unsure_correlations(images[:, rs, cs], block, props, distances, angles, levels, symmetric,
                                          normed)
    return out


def _batch_args(images, distances, angles, levels, props, n_threads):
    """Validated arguments of the batch functions."""
    images = _validate.image_stack(images)
    n_threads = _validate.n_threads(n_threads)
    distances, angles = _offsets_args(distances, angles)
    levels = 256 if levels is None else operator.index(levels)
    if levels < 1:
        raise ValueError("The maximum grayscale value in the image should be "
                         "smaller than the number of levels.")
    props = list(props)
    if not props:
        raise ValueError("props must name at least one property")
    for prop in props:
        if prop not in PROPS:
            raise ValueError(f"{prop} is an invalid property")
    return images, distances, angles, levels, props, n_threads


def _fill_unsure_correlations(images, out, props, distances, angles, levels, symmetric, normed):
    """Replace the NaNs the kernel leaves for zero-variance correlations (rare)."""
    n_off = len(distances) * len(angles)
    for k, prop in enumerate(props):
        if prop != "correlation":
            continue
        block = out[:, k * n_off:(k + 1) * n_off]
        for i in np.flatnonzero(np.isnan(block).any(axis=1)):
            P = graycomatrix(np.ascontiguousarray(images[i]), distances, angles, levels, symmetric, normed)
            block[i] = _correlation_like_skimage(P).ravel()
