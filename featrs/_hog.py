"""Histogram of Oriented Gradients: ``skimage.feature.hog``'s numbers from a Rust kernel."""
from __future__ import annotations

import numpy as np

from . import _featrs, _validate
from ._options import HOG_BLOCK_NORMS as BLOCK_NORMS

#: Bound on cell and block sizes: larger values cannot describe an image that fits in memory.
_MAX_PARAMETER = 2**31 - 1
#: Bins narrower than 0.003 degree carry no information (same bound as the kernel).
MAX_ORIENTATIONS = 2**16


def hog(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3), block_norm="L2-Hys",
        visualize=False, transform_sqrt=False, feature_vector=True, *, channel_axis=None):
    """Extract a Histogram of Oriented Gradients (HOG), as ``skimage.feature.hog``.

    Same gradient, orientation bins, cell footprint, float32 cell sums and block
    normalisation as scikit-image; see ``docs/featrs-hog-lbp.md`` for the guarantees.

    Parameters
    ----------
    image : (M, N[, C]) array_like
        Input image: integer or boolean (computed in float64), float16/float32
        (computed in float32, as skimage does) or float64. Must be finite.
    orientations : int, optional
        Number of orientation bins over [0, 180) degrees.
    pixels_per_cell : 2-tuple of int, optional
        Size (in pixels) of a cell, (rows, cols).
    cells_per_block : 2-tuple of int, optional
        Number of cells in each block, (rows, cols).
    block_norm : {'L1', 'L1-sqrt', 'L2', 'L2-Hys'}, optional
        Block normalisation method.
    visualize : bool, optional
        Also return scikit-image's HOG image (drawn with ``skimage.draw.line``, as
        scikit-image draws it).
    transform_sqrt : bool, optional
        Take the square root of the image first (the image must be non-negative).
    feature_vector : bool, optional
        Return the descriptor flattened to 1-D.
    channel_axis : int or None, optional
        Axis of the channels for a multichannel image; None for grayscale. Each pixel
        uses the channel with the largest gradient magnitude.

    Returns
    -------
    out : ndarray
        Shape ``(n_blocks_row, n_blocks_col, cells_per_block[0], cells_per_block[1],
        orientations)``, flattened when ``feature_vector``. float32 for float16/float32
        input, float64 otherwise.
    hog_image : (M, N) ndarray, optional
        The visualisation (same dtype), only returned with ``visualize=True``.

    Raises
    ------
    ValueError
        Wrong number of dimensions, empty image or smaller than one block, non-finite
        pixels, negative pixels with ``transform_sqrt``, complex input (as skimage), or
        parameter values out of range.
    TypeError
        Non-integer sizes or orientation count.
    """
    orientations, cell, block = hog_parameters(orientations, pixels_per_cell, cells_per_block, block_norm)
    image, out_dtype = _working_image(image)
    if channel_axis is None:
        if image.ndim != 2:
            raise ValueError("Only images with two spatial dimensions are supported. If using with "
                             "color/multichannel images, specify `channel_axis`.")
    else:
        if image.ndim != 3:
            raise ValueError("Only images with two spatial dimensions are supported: with "
                             f"channel_axis set the image must be 3-D, got shape {image.shape}")
        axis = _channel_axis(channel_axis, image.ndim)
        image = np.moveaxis(image, axis, -1)
        if image.shape[-1] == 0:
            raise ValueError(f"image has no channels: shape {image.shape}")
    image = np.ascontiguousarray(image)
    out = _featrs.hog_image(image, orientations, cell, block, block_norm, bool(transform_sqrt))
    if out_dtype != np.float64:
        out = out.astype(out_dtype)
    out = out.ravel() if feature_vector else out
    if visualize:
        cells = _featrs.hog_cells(image, orientations, cell, bool(transform_sqrt))
        return out, _draw(cells, image.shape[:2], cell, out_dtype)
    return out


def _draw(cells, shape, cell, dtype):
    """skimage's HOG image: per cell and bin a line through the cell centre across the
    bin's mid orientation, weighted by the cell value (skimage's own loop and drawing)."""
    from skimage.draw import line

    (c_row, c_col), (n_rows, n_cols, n_orient) = cell, cells.shape
    radius = min(c_row, c_col) // 2 - 1
    orientations_arr = np.arange(n_orient)
    midpoints = np.pi * (orientations_arr + 0.5) / n_orient
    dr_arr = radius * np.sin(midpoints)
    dc_arr = radius * np.cos(midpoints)
    image = np.zeros(shape, dtype=dtype)
    for r in range(n_rows):
        for c in range(n_cols):
            centre = (r * c_row + c_row // 2, c * c_col + c_col // 2)
            for o, dr, dc in zip(orientations_arr, dr_arr, dc_arr):
                rr, cc = line(int(centre[0] - dc), int(centre[1] + dr), int(centre[0] + dc), int(centre[1] - dr))
                image[rr, cc] += cells[r, c, o]
    return image


def hog_batch(images, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
              block_norm="L2-Hys", transform_sqrt=False, n_threads=None):
    """HOG feature vector of each image: ``skimage.feature.hog(..., feature_vector=True)``.

    Same signature and output as :func:`featrs.reference.hog_batch`; the images are
    processed in parallel with the GIL released.

    Parameters
    ----------
    images : (N, H, W) uint8 array_like
        Grayscale images.
    orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt
        As in :func:`hog`.
    n_threads : int or None, optional
        Worker threads; None uses all cores.

    Returns
    -------
    ndarray of float64, shape (N, D)
        ``(0, 0)`` when there are no images, like the reference.
    """
    images = _validate.image_stack(images)
    n_threads = _validate.n_threads(n_threads)
    orientations, cell, block = hog_parameters(orientations, pixels_per_cell, cells_per_block, block_norm)
    n = len(images)
    if n == 0:
        return np.empty((0, 0), np.float64)
    return _featrs.hog_batch(images, orientations, cell, block, block_norm, bool(transform_sqrt), n_threads)


def hog_parameters(orientations, pixels_per_cell, cells_per_block, block_norm):
    """Validate HOG parameters; return ``(orientations, cell, block)`` as ints/tuples."""
    orientations = _validate.integer(orientations, "orientations", 1, MAX_ORIENTATIONS)
    cell = _int_pair(pixels_per_cell, "pixels_per_cell")
    block = _int_pair(cells_per_block, "cells_per_block")
    if block_norm not in BLOCK_NORMS:
        raise ValueError(f"Selected block normalization method is invalid: block_norm must be one of "
                         f"{', '.join(BLOCK_NORMS)}, got {block_norm!r}")
    return orientations, cell, block


def _working_image(image):
    """Image in the dtype the kernel reads and the output dtype skimage would return."""
    image = np.atleast_2d(np.asarray(image))
    if image.dtype.kind == "c":
        raise ValueError("complex valued input is not supported")
    if image.dtype == np.uint8 or image.dtype == np.float64:
        return image.astype(image.dtype.newbyteorder("="), copy=False), np.float64
    if image.dtype.kind == "f" and image.dtype.itemsize <= 4:
        return image.astype(np.float32), np.float32
    # Like skimage: everything else (other ints, bool, objects) is computed in float64.
    return image.astype(np.float64), np.float64


def _channel_axis(channel_axis, ndim):
    if isinstance(channel_axis, tuple):
        if len(channel_axis) != 1:
            raise ValueError("only a single channel axis is currently supported")
        channel_axis = channel_axis[0]
    axis = _validate.integer(channel_axis, "channel_axis", -ndim, ndim - 1)
    return axis


def _int_pair(value, name):
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a pair of integers, got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair of integers, got {value!r}")
    return tuple(_validate.integer(v, name, 1, _MAX_PARAMETER) for v in items)
