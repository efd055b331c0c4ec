"""Speed at the product's defaults: the consumer's default feature vector of 256 px images.

Per family and for the whole vector, on one thread, the same 16 images (real CT slices
with CHESTCT_DATA, else synthetic), in one run:

- featrs (the batch functions the consumer calls),
- scikit-image (featrs.reference: the same numbers, asserted here),
- the fastest other peer: OpenCV's HOGDescriptor (HOG), vectorised numpy (LBP, with
  float64 bilinear sampling, so nearly but not exactly skimage's histograms) and numpy
  bincount (GLCM).

Defaults: HOG 9 orientations, 64 px cells, 3x3-cell blocks, L2-Hys; LBP uniform with
(P, R) = (8, 1), (16, 2), (24, 3) on a 3x3 grid of tiles; GLCM of the image quantized to
32 levels, distances 1, 2, 4, 8 x 4 angles, symmetric, normed, 6 properties, 2x2 tiles.
The targets (docs/featrs-hog-lbp.md): whole vector >= 40x scikit-image, <= 2 ms/image.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import featrs
from featrs import reference

from sample_images import source, stack

cv2.setNumThreads(1)
N_IMAGES, SIZE = 16, 256
HOG = dict(orientations=9, pixels_per_cell=(64, 64), cells_per_block=(3, 3), block_norm="L2-Hys")
LBP = dict(P=(8, 16, 24), R=(1.0, 2.0, 3.0), method="uniform", grid=3)
GLCM_LEVELS = 32
GLCM = dict(distances=(1, 2, 4, 8), angles=featrs.GLCM_ANGLES, levels=GLCM_LEVELS, symmetric=True, normed=True,
            props=featrs.GLCM_DEFAULT_PROPS, grid=2)


def quantize(images):
    """``v * levels >> 8``, as the consumer quantizes before the GLCM."""
    return ((images.astype(np.uint16) * GLCM_LEVELS) >> 8).astype(np.uint8)


def featrs_hog(images):
    return featrs.hog_batch(images, **HOG, n_threads=1)


def featrs_lbp(images):
    return featrs.lbp_histogram_grid_batch(images, **LBP, n_threads=1)


def featrs_glcm(images):
    return featrs.glcm_props_grid_batch(quantize(images), **GLCM, n_threads=1)


def featrs_vector(images):
    return np.hstack([featrs_hog(images), featrs_lbp(images), featrs_glcm(images)])


def skimage_hog(images):
    return reference.hog_batch(images, **HOG)


def skimage_lbp(images):
    return reference.lbp_histogram_grid_batch(images, **LBP)


def skimage_glcm(images):
    return reference.glcm_props_grid_batch(quantize(images), **GLCM)


def skimage_vector(images):
    return np.hstack([skimage_hog(images), skimage_lbp(images), skimage_glcm(images)])


def opencv_hog(images):
    descriptor = cv2.HOGDescriptor((SIZE, SIZE), (192, 192), (64, 64), (64, 64), 9)
    return np.stack([descriptor.compute(img) for img in images])


def _tiles(side, grid):
    edges = np.linspace(0, side, grid + 1).astype(int)
    return list(zip(edges[:-1], edges[1:]))


def _numpy_lbp_tile(tile, P, R):
    """Uniform LBP histogram of one tile: bilinear samples over a zero-padded float64 copy."""
    pad = int(math.ceil(R)) + 1
    f = np.pad(tile.astype(np.float64), pad)
    rows, cols = tile.shape
    angles = 2 * np.pi * np.arange(P) / P
    rp, cp = np.round(-R * np.sin(angles), 5), np.round(R * np.cos(angles), 5)
    bits = np.zeros(tile.shape, np.uint32)
    for i in range(P):
        r0, c0 = int(np.floor(rp[i])), int(np.floor(cp[i]))
        dr, dc = rp[i] - r0, cp[i] - c0
        win = lambda a, b: f[pad + a:pad + a + rows, pad + b:pad + b + cols]  # noqa: E731
        top = (1 - dc) * win(r0, c0) + dc * win(r0, c0 + 1)
        bottom = (1 - dc) * win(r0 + 1, c0) + dc * win(r0 + 1, c0 + 1)
        bits |= (((1 - dr) * top + dr * bottom - tile) >= 0).astype(np.uint32) << i
    ones = np.zeros(tile.shape, np.uint32)
    changes = np.zeros(tile.shape, np.uint32)
    for i in range(P):
        ones += (bits >> i) & 1
        if i < P - 1:
            changes += ((bits >> i) ^ (bits >> (i + 1))) & 1
    codes = np.where(changes <= 2, ones, P + 1)
    return np.bincount(codes.ravel(), minlength=P + 2) / codes.size


def numpy_lbp(images):
    tiles = [(r, c) for r in _tiles(SIZE, LBP["grid"]) for c in _tiles(SIZE, LBP["grid"])]
    return np.stack([np.concatenate([_numpy_lbp_tile(img[r0:r1, c0:c1], P, R)
                                     for P, R in zip(LBP["P"], LBP["R"]) for (r0, r1), (c0, c1) in tiles])
                     for img in images])


def _numpy_glcm_tile(tile):
    """The six default properties of one tile from bincount co-occurrence matrices."""
    L = GLCM_LEVELS
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    values = {p: [] for p in GLCM["props"]}
    rows, cols = tile.shape
    t = tile.astype(np.intp)
    for d in GLCM["distances"]:
        for a in GLCM["angles"]:
            dr, dc = int(round(np.sin(a) * d)), int(round(np.cos(a) * d))
            r0, r1 = max(0, -dr), min(rows, rows - dr)
            c0, c1 = max(0, -dc), min(cols, cols - dc)
            first = t[r0:r1, c0:c1]
            second = t[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
            P = np.bincount((first * L + second).ravel(), minlength=L * L).reshape(L, L).astype(np.float64)
            P = P + P.T
            P /= max(P.sum(), 1)
            mi, mj = (i * P).sum(), (j * P).sum()
            si, sj = np.sqrt(((i - mi) ** 2 * P).sum()), np.sqrt(((j - mj) ** 2 * P).sum())
            asm = (P ** 2).sum()
            values["contrast"].append(((i - j) ** 2 * P).sum())
            values["dissimilarity"].append((np.abs(i - j) * P).sum())
            values["homogeneity"].append((P / (1 + (i - j) ** 2)).sum())
            values["energy"].append(np.sqrt(asm))
            values["correlation"].append(1.0 if si < 1e-15 or sj < 1e-15 else ((i - mi) * (j - mj) * P).sum() / (si * sj))
            values["ASM"].append(asm)
    return np.concatenate([values[p] for p in GLCM["props"]])


def numpy_glcm(images):
    q = quantize(images)
    tiles = [(r, c) for r in _tiles(SIZE, GLCM["grid"]) for c in _tiles(SIZE, GLCM["grid"])]
    return np.stack([np.concatenate([_numpy_glcm_tile(img[r0:r1, c0:c1]) for (r0, r1), (c0, c1) in tiles])
                     for img in q])


IMPLS = {
    "hog": {"featrs": featrs_hog, "skimage": skimage_hog, "opencv": opencv_hog},
    "lbp": {"featrs": featrs_lbp, "skimage": skimage_lbp, "numpy": numpy_lbp},
    "glcm": {"featrs": featrs_glcm, "skimage": skimage_glcm, "numpy": numpy_glcm},
    "vector": {"featrs": featrs_vector, "skimage": skimage_vector},
}
CASES = [(family, impl) for family, impls in IMPLS.items() for impl in impls]


@pytest.fixture(scope="module")
def images():
    return stack(N_IMAGES, SIZE)


@pytest.fixture(scope="module")
def skimage_results(images):
    return {family: IMPLS[family]["skimage"](images) for family in ("hog", "lbp", "glcm")}


@pytest.mark.parametrize("family, impl", CASES, ids=[f"{f}-{i}" for f, i in CASES])
def test_defaults(benchmark, images, skimage_results, family, impl):
    benchmark.group = f"defaults {family} {SIZE}px x{N_IMAGES}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()
    func = IMPLS[family][impl]
    slow = impl != "featrs"
    out = benchmark.pedantic(func, args=(images,), rounds=3 if slow else 15, iterations=1, warmup_rounds=0 if slow else 2)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["ms_per_image"] = benchmark.stats.stats.median / N_IMAGES * 1e3
    if impl == "featrs":
        expected = (np.hstack([skimage_results[f] for f in ("hog", "lbp", "glcm")]) if family == "vector"
                    else skimage_results[family])
        if family == "lbp":
            np.testing.assert_array_equal(out, expected)
        elif family == "hog":
            # HOG: scikit-image's float32 cell sums, block sums in another order (docs).
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
        else:
            # GLCM: within 1e-9 of the largest value (docs/featrs-glcm-gabor.md).
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    elif family == "lbp":
        assert np.abs(out - skimage_results["lbp"]).sum(axis=1).max() < 0.05
    elif family == "glcm":
        np.testing.assert_allclose(out, skimage_results["glcm"], rtol=1e-6, atol=1e-9)
    else:
        assert out.shape[0] == N_IMAGES
