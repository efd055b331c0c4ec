"""GLCM speed: featrs vs scikit-image vs a numpy bincount GLCM vs mahotas, one thread.

Configuration (the consumer's): 256 levels, distance 1, angles 0, pi/4, pi/2, 3pi/4,
symmetric, normed, props contrast, dissimilarity, homogeneity, energy, correlation, ASM.
featrs runs ``glcm_props_batch`` on a one-image stack; scikit-image runs
``graycomatrix`` + six ``graycoprops``; numpy builds the same matrices with ``bincount``
and the same six properties (checked equal to scikit-image's); mahotas computes its 13
Haralick features (different definitions: a speed reference only). The batch benchmark
measures scaling from 1 to 2 threads on 64 images.
"""
from __future__ import annotations

import cv2
import mahotas
import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

import featrs
from featrs import reference

from sample_images import image, source, stack

cv2.setNumThreads(1)
SIZES = (64, 128, 256)
ANGLES = reference.GLCM_ANGLES
PROPS = reference.GLCM_PROPS

# Pixel offsets (row, col) scikit-image uses for distance 1 and ANGLES.
OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1))
_I, _J = np.ogrid[0:256, 0:256]
_DIFF = (_I - _J).astype(np.float64)
_WEIGHTS = {"contrast": (_DIFF**2).ravel(), "dissimilarity": np.abs(_DIFF).ravel(),
            "homogeneity": (1.0 / (1.0 + _DIFF**2)).ravel()}


def _setup(benchmark, kernel, impl):
    benchmark.group = kernel
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()


def skimage_props(img):
    P = graycomatrix(img, [1], ANGLES, levels=256, symmetric=True, normed=True)
    return np.concatenate([graycoprops(P, p).ravel() for p in PROPS])


def numpy_props(img):
    """Symmetric normed GLCMs from ``np.bincount``, properties as matrix-vector products."""
    img = img.astype(np.intp)
    rows, cols = img.shape
    P = np.empty((len(OFFSETS), 65536))
    for a, (dr, dc) in enumerate(OFFSETS):
        c0, c1 = max(0, -dc), min(cols, cols - dc)
        i = img[0:rows - dr, c0:c1]
        j = img[dr:rows, c0 + dc:c1 + dc]
        counts = np.bincount((i * 256 + j).ravel(), minlength=65536).reshape(256, 256)
        counts = counts + counts.T
        P[a] = (counts / counts.sum()).ravel()
    out = {p: P @ w for p, w in _WEIGHTS.items()}
    out["ASM"] = np.einsum("ak,ak->a", P, P)
    out["energy"] = np.sqrt(out["ASM"])
    Pm = P.reshape(len(OFFSETS), 256, 256)
    levels = np.arange(256.0)
    p_i = Pm.sum(axis=2)
    p_j = Pm.sum(axis=1)
    mean_i, mean_j = p_i @ levels, p_j @ levels
    std_i = np.sqrt(np.einsum("ak,ak->a", p_i, (levels - mean_i[:, None]) ** 2))
    std_j = np.sqrt(np.einsum("ak,ak->a", p_j, (levels - mean_j[:, None]) ** 2))
    cov = np.einsum("aij,ai,aj->a", Pm, levels - mean_i[:, None], levels - mean_j[:, None])
    ok = (std_i >= 1e-15) & (std_j >= 1e-15)
    out["correlation"] = np.where(ok, cov / np.where(ok, std_i * std_j, 1.0), 1.0)
    return np.concatenate([out[p] for p in PROPS])


@pytest.mark.parametrize("size", SIZES)
def test_glcm_featrs(benchmark, size):
    _setup(benchmark, f"glcm {size}px", "featrs")
    stack1 = image(size)[None]
    out = benchmark(featrs.glcm_props_batch, stack1, n_threads=1)
    np.testing.assert_allclose(out[0], skimage_props(image(size)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_glcm_skimage(benchmark, size):
    _setup(benchmark, f"glcm {size}px", "skimage")
    benchmark(skimage_props, image(size))


@pytest.mark.parametrize("size", SIZES)
def test_glcm_numpy(benchmark, size):
    _setup(benchmark, f"glcm {size}px", "numpy")
    out = benchmark(numpy_props, image(size))
    np.testing.assert_allclose(out, skimage_props(image(size)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_glcm_mahotas(benchmark, size):
    _setup(benchmark, f"glcm {size}px", "mahotas")
    out = benchmark(mahotas.features.haralick, image(size), distance=1)
    assert out.shape == (4, 13)


@pytest.mark.parametrize("threads", [1, 2])
def test_glcm_batch(benchmark, threads):
    _setup(benchmark, "glcm_batch 64x128px", f"featrs-{threads}t")
    images = stack(64, 128)
    out = benchmark(featrs.glcm_props_batch, images, n_threads=threads)
    assert out.shape == (64, len(PROPS) * len(ANGLES))


def _dropin(graycomatrix_, graycoprops_, img):
    P = graycomatrix_(img, [1], ANGLES, symmetric=True, normed=True)
    return np.concatenate([graycoprops_(P, prop).ravel() for prop in PROPS])


@pytest.mark.parametrize("size", SIZES)
def test_glcm_dropin_featrs(benchmark, size):
    """The drop-in API: one graycomatrix, six graycoprops (featrs' functions)."""
    _setup(benchmark, f"glcm drop-in {size}px", "featrs")
    out = benchmark(_dropin, featrs.graycomatrix, featrs.graycoprops, image(size))
    np.testing.assert_allclose(out, _dropin(graycomatrix, graycoprops, image(size)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_glcm_dropin_skimage(benchmark, size):
    _setup(benchmark, f"glcm drop-in {size}px", "skimage")
    benchmark(_dropin, graycomatrix, graycoprops, image(size))
