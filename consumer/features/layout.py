"""The layout of the feature vector: its columns, its tiles, and the image sizes it needs.

Everything here is arithmetic on the configuration and the image size; nothing computes
features. :func:`check_image_size` is the one check, run by every command right after
the producer's ``hello`` and before Spark starts, that the stream's images can take the
configuration.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

import featrs

from .config import FeatureConfig

#: Smallest tile side (pixels) a spatial grid may cut an image into.
MIN_TILE_SIDE = 8


def feature_names(config: FeatureConfig, image_shape: Sequence[int]) -> list[str]:
    """Names of the columns :func:`extract` returns for images of ``image_shape`` (H, W[, C])."""
    h, w = _hw(image_shape)
    names: list[str] = []
    for family in config.features:
        if family == "hog":
            for ppc in config.hog_pixels_per_cell:
                br, bc, cpb = _hog_blocks(h, w, ppc, config.hog_cells_per_block)
                names += [f"hog.c{ppc}.b{r}_{c}.cell{i}_{j}.o{o}" for r in range(br) for c in range(bc)
                          for i in range(cpb) for j in range(cpb) for o in range(config.hog_orientations)]
        elif family == "lbp":
            for P, R in zip(config.lbp_P, config.lbp_R):
                names += [f"lbp.P{P}R{R:g}.{tile}.bin{k}" for tile in _tile_names(h, w, config.lbp_grid)
                          for k in range(featrs.lbp_n_bins(P, config.lbp_method))]
        elif family == "glcm":
            names += [f"glcm.{tile}.{p}.d{d}.a{math.degrees(a):g}" for tile in _tile_names(h, w, config.glcm_grid)
                      for p in config.glcm_props for d in config.glcm_distances for a in config.glcm_angles]
        elif family == "gabor":
            names += [f"gabor.{tile}.f{f:g}.t{math.degrees(t):g}.{stat}"
                      for tile in _tile_names(h, w, config.gabor_grid) for f in config.gabor_frequencies
                      for t in config.gabor_thetas for stat in ("mean", "var")]
    return names


def _tile_names(h: int, w: int, grid: int) -> list[str]:
    if grid > 1:
        _check_grid(h, w, grid)
    return [f"t{i}_{j}" for i in range(grid) for j in range(grid)]


def n_features(config: FeatureConfig, image_shape: Sequence[int]) -> int:
    """Number of columns :func:`extract` returns for images of ``image_shape``."""
    return _n_features(config, *_hw(image_shape))


@functools.lru_cache(maxsize=32)
def _n_features(config: FeatureConfig, h: int, w: int) -> int:
    # extract() checks its width on every batch: building the default names took 0.5 ms,
    # about 1 % of a feature worker's time at 512 px (py-spy, chestct predict).
    return len(feature_names(config, (h, w)))


def min_image_side(config: FeatureConfig) -> int:
    """The smallest square image side every family of ``config`` can take."""
    side = 1
    if "hog" in config.features:
        side = max(side, max(config.hog_pixels_per_cell) * config.hog_cells_per_block)
    for family, grid in (("lbp", config.lbp_grid), ("glcm", config.glcm_grid), ("gabor", config.gabor_grid)):
        if family in config.features and grid > 1:
            side = max(side, grid * MIN_TILE_SIDE)
    return side


def check_image_size(config: FeatureConfig, image_shape: Sequence[int]) -> None:
    """Raise ValueError, naming the option to change, unless images of ``image_shape`` fit.

    Parameters
    ----------
    config : FeatureConfig
    image_shape : (H, W) or (H, W, C)
    """
    feature_names(config, image_shape)


def tiles(images: np.ndarray, grid: int) -> list[np.ndarray]:
    """Split ``(N, H, W)`` images into ``grid x grid`` tile stacks, row-major.

    Tile edges are ``linspace(0, side, grid + 1)`` truncated to ints; each returned
    stack is C-contiguous and writable (scikit-image's GLCM refuses read-only input).
    """
    if grid == 1:
        return [np.require(images, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])]
    _, h, w = images.shape
    _check_grid(h, w, grid)
    rows = np.linspace(0, h, grid + 1).astype(int)
    cols = np.linspace(0, w, grid + 1).astype(int)
    return [np.array(images[:, rows[i]:rows[i + 1], cols[j]:cols[j + 1]], order="C")
            for i in range(grid) for j in range(grid)]


def _check_grid(h: int, w: int, grid: int) -> None:
    if min(h, w) // grid < MIN_TILE_SIDE:
        raise ValueError(f"images of {h}x{w} are too small for a {grid}x{grid} grid (tiles under "
                         f"{MIN_TILE_SIDE} pixels); send larger images or lower the grid option")


def _hog_blocks(h: int, w: int, ppc: int, cpb: int) -> tuple[int, int, int]:
    br, bc = h // ppc - cpb + 1, w // ppc - cpb + 1
    if br < 1 or bc < 1:
        raise ValueError(f"images of {h}x{w} are too small for HOG with {ppc}-pixel cells and "
                         f"{cpb}x{cpb}-cell blocks (need at least {ppc * cpb}x{ppc * cpb}); "
                         f"send larger images or lower hog.pixels_per_cell / hog.cells_per_block")
    return br, bc, cpb


def _hw(image_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) with positive sides, got {image_shape}")
    return shape[0], shape[1]
