"""A numpy prototype of uniform LBP with a tolerance on the neighbour difference.

skimage's (and featrs') LBP sets a neighbour's bit when ``neighbour - centre >= 0``; on
the smooth body a grey step of one level flips it, so sensor noise rewrites 40-60% of
the codes (docs/model-selection.md, issue 12). Here the bit is set when
``neighbour - centre >= tolerance``: differences smaller than the tolerance read as
"not brighter", so noise of a few levels no longer toggles bits. ``tolerance=0`` is
skimage's LBP (the tests check it against featrs' codes).

Only for grouped CV in ``scripts/select_model.py`` (stage 8): featrs' Rust kernels are
the product's LBP, and this prototype is slow (about 0.1 s per 512 px image).
"""
from __future__ import annotations

import numpy as np
from featrs._lbp import neighbour_offsets
from featrs._tiles import tile_slices


def _bilinear(padded: np.ndarray, pad: int, shape: tuple[int, int], dr: float, dc: float) -> np.ndarray:
    """skimage's bilinear sample of every pixel's neighbour at ``(r + dr, c + dc)``, 0 outside."""
    rows, cols = shape
    r0, c0 = int(np.floor(dr)), int(np.floor(dc))
    r1, c1 = int(np.ceil(dr)), int(np.ceil(dc))
    fr, fc = dr - r0, dc - c0

    def at(r: int, c: int) -> np.ndarray:
        return padded[pad + r:pad + r + rows, pad + c:pad + c + cols]

    top = (1 - fc) * at(r0, c0) + fc * at(r0, c1)
    bottom = (1 - fc) * at(r1, c0) + fc * at(r1, c1)
    return (1 - fr) * top + fr * bottom


def uniform_codes(image: np.ndarray, P: int, R: float, tolerances) -> list[np.ndarray]:
    """Uniform LBP codes of ``image`` (0..P+1, skimage's ``method="uniform"``), one array per tolerance.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Grey picture (any real dtype; compared as float64).
    P : int
        Neighbour count (at least 2).
    R : float
        Radius in pixels (positive).
    tolerances : sequence of float
        Smallest ``neighbour - centre`` that sets a bit, in grey levels (0 is skimage's rule).

    Returns
    -------
    list of ndarray of int64, shape (H, W)
    """
    image = np.asarray(image, np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    if int(P) != P or P < 2 or not R > 0:
        raise ValueError(f"need an integer P >= 2 and a radius R > 0, got P={P!r}, R={R!r}")
    tolerances = [float(t) for t in tolerances]
    if not tolerances or min(tolerances) < 0:
        raise ValueError(f"tolerances must be a non-empty list of values >= 0, got {tolerances!r}")
    pad = int(np.ceil(R)) + 1
    padded = np.pad(image, pad)
    rp, cp = neighbour_offsets(int(P), float(R))
    diffs = [_bilinear(padded, pad, image.shape, dr, dc) - image for dr, dc in zip(rp, cp)]
    out = []
    for t in tolerances:
        bits = [d >= t for d in diffs]
        # skimage counts the changes between consecutive bits 0..P-1, not closing the circle.
        changes = sum((bits[i] != bits[i + 1]).astype(np.int64) for i in range(P - 1))
        ones = sum(b.astype(np.int64) for b in bits)
        out.append(np.where(changes <= 2, ones, P + 1))
    return out


def histogram_grid(image: np.ndarray, P, R, grid: int, tolerances) -> np.ndarray:
    """Per-tile normalised uniform-LBP histograms, laid out as featrs' ``lbp_histogram_grid_batch``.

    Columns are tolerance-major, then (P, R) pair, then tile (row-major, each tile's LBP
    computed on the tile alone, as featrs does), then code.

    Returns
    -------
    ndarray of float64, shape (len(tolerances) * sum(p + 2 for p in P) * grid**2,)
    """
    if len(P) != len(R):
        raise ValueError(f"P ({len(P)} values) and R ({len(R)} values) must pair up")
    blocks = {t: [] for t in range(len(tolerances))}
    for p, r in zip(P, R):
        for rs, cs in tile_slices(image.shape[0], image.shape[1], grid):
            tile = image[rs, cs]
            for k, codes in enumerate(uniform_codes(tile, p, r, tolerances)):
                blocks[k].append(np.bincount(codes.ravel(), minlength=p + 2) / codes.size)
    return np.concatenate([np.concatenate(blocks[k]) for k in range(len(tolerances))])


def histogram_grid_batch(images: np.ndarray, P, R, grid: int, tolerances) -> np.ndarray:
    """:func:`histogram_grid` of every image of an ``(N, H, W)`` stack, as float32 rows."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be an (N, H, W) stack, got shape {images.shape}")
    return np.stack([histogram_grid(img, P, R, grid, tolerances) for img in images]).astype(np.float32)
