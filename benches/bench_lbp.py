"""LBP speed (P=8, R=1, uniform, codes + normalised histogram): featrs vs scikit-image vs numpy.

One thread; the batch benchmark measures scaling from 1 to 2 threads.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.feature import local_binary_pattern as sk_lbp

import featrs

from sample_images import image, source, stack

cv2.setNumThreads(1)
SIZES = (64, 128, 256)
P, R, METHOD = 8, 1, "uniform"


def _setup(benchmark, kernel, impl):
    benchmark.group = kernel
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()


def skimage_histogram(img):
    codes = sk_lbp(img, P, R, METHOD).astype(np.int64)
    return np.bincount(codes.ravel(), minlength=P + 2) / codes.size


def featrs_histogram(img):
    return featrs.lbp_histogram_batch(img[None], P, R, METHOD, n_threads=1)[0]


def numpy_histogram(img):
    """Vectorised numpy LBP (8 neighbours at radius 1, bilinear diagonals, zero border)."""
    f = np.pad(img.astype(np.float64), 1)
    rows, cols = img.shape
    center = f[1:-1, 1:-1]
    d = np.round(np.sqrt(0.5), 5)
    w = (1 - d, d)
    bits = np.zeros(img.shape, np.uint8)
    for i, (dr, dc) in enumerate([(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)]):
        if dr == 0 or dc == 0:
            value = f[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
        else:
            # Bilinear between the centre row/column and the diagonal neighbour's.
            r0, c0 = 1, 1
            r1, c1 = 1 + dr, 1 + dc
            top = w[0] * f[r0:r0 + rows, c0:c0 + cols] + w[1] * f[r0:r0 + rows, c1:c1 + cols]
            bottom = w[0] * f[r1:r1 + rows, c0:c0 + cols] + w[1] * f[r1:r1 + rows, c1:c1 + cols]
            value = w[0] * top + w[1] * bottom
        bits |= (value >= center).astype(np.uint8) << i
    shifted = bits >> 1
    changes = np.unpackbits(((bits ^ shifted) & 0x7F)[..., None], axis=-1).sum(-1)
    ones = np.unpackbits(bits[..., None], axis=-1).sum(-1)
    codes = np.where(changes <= 2, ones, P + 1)
    return np.bincount(codes.ravel(), minlength=P + 2) / codes.size


@pytest.mark.parametrize("size", SIZES)
def test_lbp_featrs(benchmark, size):
    _setup(benchmark, f"lbp {size}px", "featrs")
    img = image(size)
    out = benchmark(featrs_histogram, img)
    np.testing.assert_array_equal(out, skimage_histogram(img))


@pytest.mark.parametrize("size", SIZES)
def test_lbp_skimage(benchmark, size):
    _setup(benchmark, f"lbp {size}px", "skimage")
    benchmark(skimage_histogram, image(size))


@pytest.mark.parametrize("size", SIZES)
def test_lbp_numpy(benchmark, size):
    _setup(benchmark, f"lbp {size}px", "numpy")
    img = image(size)
    out = benchmark(numpy_histogram, img)
    # Same method, so nearly the same histogram (the diagonals' rounding may differ).
    assert np.abs(out - skimage_histogram(img)).sum() < 0.02


@pytest.mark.parametrize("threads", [1, 2])
def test_lbp_batch(benchmark, threads):
    _setup(benchmark, "lbp_batch 64x128px", f"featrs-{threads}t")
    images = stack(64, 128)
    out = benchmark(featrs.lbp_histogram_batch, images, P, R, METHOD, n_threads=threads)
    assert out.shape == (64, P + 2)
