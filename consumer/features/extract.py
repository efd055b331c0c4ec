"""Numpy-level extraction of the fixed-length feature families through featrs' batch kernels.

:func:`extract` turns an ``(N, H, W[, C])`` uint8 stack into ``(N, D)`` float32 rows whose
columns :func:`consumer.features.layout.feature_names` names. ``backend`` picks featrs'
Rust kernels or their scikit-image reference (the same numbers, for parity and benches).
"""
from __future__ import annotations

import numpy as np

from .config import BACKENDS, FIXED_FAMILIES, FeatureConfig
from .layout import n_features, tiles


def to_grey(images: np.ndarray) -> np.ndarray:
    """``(N,H,W)`` uint8 as is; ``(N,H,W,C)`` (C = 1, 3 RGB or 4 RGBA) converted to grey.

    Colour uses OpenCV's ITU-R 601 weights (``cv2.COLOR_RGB2GRAY``), as the producer does.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got dtype {images.dtype}")
    if images.ndim == 3:
        return images
    if images.ndim != 4 or images.shape[3] not in (1, 3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {images.shape}")
    if images.shape[3] == 1:
        return images[..., 0]
    # Imported only for colour: OpenCV costs a grey stream's executors tens of MiB each.
    import cv2

    code = cv2.COLOR_RGB2GRAY if images.shape[3] == 3 else cv2.COLOR_RGBA2GRAY
    out = np.empty(images.shape[:3], np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.cvtColor(np.ascontiguousarray(img), code)
    return out


def extract(images: np.ndarray, config: FeatureConfig, backend: str = "rust", n_threads: int = 1) -> np.ndarray:
    """Fixed-length features of a stack of images, families concatenated in config order.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W) or (N, H, W, C)
        Colour images are converted to grey first.
    config : FeatureConfig
        SIFT, if enabled, is skipped here (see :mod:`consumer.features.sift_bow`).
    backend : {"rust", "skimage"}
        featrs' Rust batch functions or the scikit-image reference (same numbers).
    n_threads : int
        Threads for the Rust kernels.

    Returns
    -------
    ndarray of float32, shape (N, :func:`n_features`)
    """
    api = backend_module(backend)
    grey = to_grey(images)
    n, h, w = grey.shape
    if h == 0 or w == 0:
        raise ValueError(f"images must not be empty, got shape {grey.shape}")
    # Writable and contiguous: scikit-image's Cython GLCM refuses read-only buffers.
    grey = np.require(grey, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])
    width = n_features(config, (h, w))
    if n == 0:
        return np.zeros((0, width), np.float32)
    blocks = [_family(api, family, grey, config, n_threads) for family in config.features
              if family in FIXED_FAMILIES]
    out = np.hstack(blocks).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)
    if out.shape != (n, width):
        raise RuntimeError(f"backend {backend} returned {out.shape[1]} features, expected {width}")
    return out


def quantize(images: np.ndarray, levels: int) -> np.ndarray:
    """Map 0..255 to ``levels`` grey levels: ``v * levels // 256`` (identity for 256)."""
    if levels >= 256:
        return images
    if levels & (levels - 1) == 0:
        # 2**k levels: v * 2**k // 256 is v >> (8 - k), one pass over the bytes instead of
        # a uint16 copy, a multiply, a shift and a copy back (0.24 ms of a 512 px image).
        return np.right_shift(images, 9 - levels.bit_length())
    return ((images.astype(np.uint16) * levels) >> 8).astype(np.uint8)


def _family(api, family: str, grey: np.ndarray, c: FeatureConfig, n_threads: int) -> np.ndarray:
    if family == "hog":
        return np.hstack([api.hog_batch(grey, orientations=c.hog_orientations, pixels_per_cell=(ppc, ppc),
                                        cells_per_block=(c.hog_cells_per_block,) * 2,
                                        block_norm=c.hog_block_norm, transform_sqrt=c.hog_transform_sqrt,
                                        n_threads=n_threads)
                          for ppc in c.hog_pixels_per_cell])
    # LBP and GLCM: every tile (and every LBP radius) in one kernel call, which samples the
    # image once and reuses its plans across tiles; columns as feature_names lays them out.
    if family == "lbp":
        return api.lbp_histogram_grid_batch(grey, c.lbp_P, c.lbp_R, c.lbp_method, c.lbp_grid, n_threads=n_threads)
    if family == "glcm":
        return api.glcm_props_grid_batch(quantize(grey, c.glcm_levels), c.glcm_distances, c.glcm_angles,
                                         c.glcm_levels, c.glcm_symmetric, c.glcm_normed, c.glcm_props,
                                         c.glcm_grid, n_threads=n_threads)
    return np.hstack([api.gabor_bank_batch(tile, frequencies=c.gabor_frequencies, thetas=c.gabor_thetas,
                                           bandwidth=c.gabor_bandwidth, n_threads=n_threads)
                      for tile in tiles(grey, c.gabor_grid)])


def backend_module(name: str):
    """The module holding the batch functions of backend ``name`` (``featrs`` or ``featrs.reference``)."""
    if name == "skimage":
        from featrs import reference
        return reference
    if name == "rust":
        import featrs
        if not hasattr(featrs, "hog_batch"):
            raise RuntimeError("featrs was built without its batch functions (featrs.hog_batch is missing); "
                               "rebuild featrs (make featrs) or use backend 'skimage'")
        return featrs
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
