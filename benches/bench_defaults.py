"""Speed at the product's defaults: the consumer's default feature vector, on one thread.

The parameters come from their one owner, ``consumer.features.FeatureConfig()``, and the
image side from the producer's default ``Preprocessing().image_size``. Two sizes, each a
group of its own:

- the yardstick, 256 px, with the HOG cells scaled to the same fraction of the image as
  at the product's size (issue 10 set its targets there: whole vector >= 40x
  scikit-image and <= 2 ms/image, docs/featrs-hog-lbp.md),
- the product's own size (512 px) with the defaults as they are.

Per family and for the whole vector, the same images (real CT slices with CHESTCT_DATA,
else synthetic), in one run:

- featrs, through the consumer's own calls (``consumer.features.extract``),
- scikit-image (``featrs.reference`` through the same calls: the same numbers, asserted here),
- the fastest other peer: OpenCV's HOGDescriptor (HOG), vectorised numpy (LBP, with
  float64 bilinear sampling, so nearly but not exactly skimage's histograms) and numpy
  bincount (GLCM).

A last group measures the vector per call at the product's size: a producer batch per
call (what the feature stage does) against one image per call (what the pipeline
benchmark's bound does), so that a cost paid per call, not per image, shows.
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

import featrs
from consumer.features.extract import _family, extract, quantize
from consumer.features.config import FIXED_FAMILIES, FeatureConfig
from featrs import reference
from producer.imaging import Preprocessing
from producer.stream import DEFAULT_BATCH_SIZE

from quick import QUICK
from sample_images import source, stack

cv2.setNumThreads(1)
N_IMAGES = 4 if QUICK else 16
DEFAULTS = FeatureConfig()
PRODUCT_SIDE = Preprocessing().image_size[0]
assert Preprocessing().image_size == (PRODUCT_SIDE, PRODUCT_SIDE), "the bench assumes square images"
YARDSTICK_SIDE = 256
SIDES = tuple(dict.fromkeys((YARDSTICK_SIDE, PRODUCT_SIDE)))
FAMILIES = tuple(f for f in DEFAULTS.features if f in FIXED_FAMILIES)


def config_at(side: int) -> FeatureConfig:
    """The defaults for ``side`` px images: HOG cells the same fraction of the image as at
    the product's size (the other families' parameters do not depend on the size)."""
    cells = tuple(max(1, round(ppc * side / PRODUCT_SIDE)) for ppc in DEFAULTS.hog_pixels_per_cell)
    return dataclasses.replace(DEFAULTS, hog_pixels_per_cell=cells)


def family_of(api, family):
    """What the consumer runs for ``family`` (featrs or featrs.reference), as float64."""
    def run(images):
        return _family(api, family, images, config_at(images.shape[1]), 1)
    run.__name__ = f"{api.__name__}_{family}"
    return run


def featrs_vector(images):
    return extract(images, config_at(images.shape[1]), backend="rust", n_threads=1)


def skimage_vector(images):
    return extract(images, config_at(images.shape[1]), backend="skimage", n_threads=1)


def opencv_hog(images):
    c, side = config_at(images.shape[1]), images.shape[1]
    out = []
    for ppc in c.hog_pixels_per_cell:
        block = c.hog_cells_per_block * ppc
        descriptor = cv2.HOGDescriptor((side, side), (block, block), (ppc, ppc), (ppc, ppc), c.hog_orientations)
        out.append(np.stack([descriptor.compute(img) for img in images]))
    return np.hstack(out)


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
    c = config_at(images.shape[1])
    assert c.lbp_method == "uniform", "the numpy peer computes uniform codes only"
    tiles = [(r, col) for r in _tiles(images.shape[1], c.lbp_grid) for col in _tiles(images.shape[2], c.lbp_grid)]
    return np.stack([np.concatenate([_numpy_lbp_tile(img[r0:r1, c0:c1], P, R)
                                     for P, R in zip(c.lbp_P, c.lbp_R) for (r0, r1), (c0, c1) in tiles])
                     for img in images])


def _numpy_glcm_tile(tile, c: FeatureConfig):
    """The six default properties of one tile from bincount co-occurrence matrices."""
    L = c.glcm_levels
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    values = {p: [] for p in c.glcm_props}
    rows, cols = tile.shape
    t = tile.astype(np.intp)
    for d in c.glcm_distances:
        for a in c.glcm_angles:
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
    return np.concatenate([values[p] for p in c.glcm_props])


def numpy_glcm(images):
    c = config_at(images.shape[1])
    assert c.glcm_symmetric and c.glcm_normed, "the numpy peer computes symmetric normed matrices only"
    assert set(c.glcm_props) <= {"contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM"}
    q = quantize(images, c.glcm_levels)
    tiles = [(r, col) for r in _tiles(images.shape[1], c.glcm_grid) for col in _tiles(images.shape[2], c.glcm_grid)]
    return np.stack([np.concatenate([_numpy_glcm_tile(img[r0:r1, c0:c1], c) for (r0, r1), (c0, c1) in tiles])
                     for img in q])


PEERS = {"hog": {"opencv": opencv_hog}, "lbp": {"numpy": numpy_lbp}, "glcm": {"numpy": numpy_glcm}}
IMPLS = {
    **{family: {"featrs": family_of(featrs, family), "skimage": family_of(reference, family), **PEERS.get(family, {})}
       for family in FAMILIES},
    "vector": {"featrs": featrs_vector, "skimage": skimage_vector},
}
CASES = [(side, family, impl) for side in SIDES for family, impls in IMPLS.items() for impl in impls]


@pytest.fixture(scope="module")
def images():
    return {side: stack(N_IMAGES, side) for side in SIDES}


@pytest.fixture(scope="module")
def skimage_results(images):
    """scikit-image's numbers per side: each family (float64) and the vector (float32)."""
    cache = {}

    def get(side, family):
        if (side, family) not in cache:
            cache[side, family] = IMPLS[family]["skimage"](images[side])
        return cache[side, family]
    return get


@pytest.mark.parametrize("side, family, impl", CASES, ids=[f"{s}px-{f}-{i}" for s, f, i in CASES])
def test_defaults(benchmark, images, skimage_results, side, family, impl):
    imgs = images[side]
    benchmark.group = f"defaults {family} {side}px x{N_IMAGES}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()
    benchmark.extra_info["hog_cell_px"] = config_at(side).hog_pixels_per_cell[0]
    func = IMPLS[family][impl]
    slow = impl != "featrs"
    out = benchmark.pedantic(func, args=(imgs,), rounds=3 if slow else 15, iterations=1, warmup_rounds=0 if slow else 2)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["ms_per_image"] = benchmark.stats.stats.median / N_IMAGES * 1e3
    expected = skimage_results(side, family)
    if impl == "featrs":
        if family == "lbp":
            np.testing.assert_array_equal(out, expected)
        elif family == "hog":
            # HOG: scikit-image's float32 cell sums, block sums in another order (docs).
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
        elif family == "glcm":
            # GLCM: within 1e-9 of the largest value (docs/featrs-glcm-gabor.md).
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
        else:
            # The float32 vector: the families' float64 differences above, rounded once.
            assert out.dtype == expected.dtype == np.float32
            np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())
    elif family == "lbp":
        assert np.abs(out - expected).sum(axis=1).max() < 0.05
    elif family == "glcm":
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    else:
        assert out.shape[0] == N_IMAGES


@pytest.mark.parametrize("per_call", [DEFAULT_BATCH_SIZE, 1], ids=["producer-batch", "one-image"])
def test_vector_per_call(benchmark, images, per_call):
    imgs = images[PRODUCT_SIDE]
    benchmark.group = f"defaults vector {PRODUCT_SIDE}px, images per call"
    # featrs names the baseline (scripts/bench.py): a producer batch per call.
    benchmark.extra_info["impl"] = "featrs" if per_call > 1 else "featrs, one image per call"
    benchmark.extra_info["images_per_call"] = per_call

    def run():
        return np.vstack([featrs_vector(imgs[i:i + per_call]) for i in range(0, len(imgs), per_call)])

    out = benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=2)
    if benchmark.stats is not None:
        benchmark.extra_info["ms_per_image"] = benchmark.stats.stats.median / N_IMAGES * 1e3
    np.testing.assert_array_equal(out, featrs_vector(imgs))  # the same rows however the stack is cut
