"""Gabor bank speed: featrs vs scikit-image vs an exact separable OpenCV filter, one thread.

The bank: frequencies (0.1, 0.2, 0.3, 0.4) x thetas (0, pi/4, pi/2, 3pi/4), bandwidth 1,
reflect mode; each implementation returns the mean and variance of every filter's
response magnitude of the image scaled to [0, 1] (the consumer's feature).
featrs runs ``gabor_bank_batch`` on a one-image stack; scikit-image is the reference
(``skimage.filters.gabor`` = ``scipy.ndimage.convolve``); the OpenCV peer splits each
isotropic kernel exactly into complex 1-D factors ``C a(x) b(y)`` and runs four float64
``cv2.sepFilter2D`` per filter (real/imaginary combinations), checked equal to
scikit-image. The batch benchmark measures scaling from 1 to 2 threads on 64 images.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import featrs
from featrs import _gabor, reference

from sample_images import image, source, stack

cv2.setNumThreads(1)
SIZES = (64, 128, 256)


def _setup(benchmark, kernel, impl):
    benchmark.group = kernel
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()


def _separable_factors():
    """Per filter: flipped 1-D factors (cv2 correlates) and the scale C."""
    factors = []
    for f in reference.GABOR_FREQUENCIES:
        for t in reference.GABOR_THETAS:
            freq, sx, sy, ct, st, offset, x0, y0 = _gabor._kernel_params(f, t, 1, None, None, 3, 0)
            kx, ky = np.arange(-x0, x0 + 1), np.arange(-y0, y0 + 1)
            a = np.exp(-0.5 * kx**2 / sx**2) * np.exp(1j * 2 * np.pi * freq * ct * kx)
            b = np.exp(-0.5 * ky**2 / sy**2) * np.exp(1j * (2 * np.pi * freq * st * ky + offset))
            factors.append((a[::-1].copy(), b[::-1].copy(), 1 / (2 * np.pi * sx * sy)))
    return factors


FACTORS = _separable_factors()


def opencv_bank(img):
    x = img.astype(np.float64) / 255.0
    out = np.empty(2 * len(FACTORS))
    for k, (a, b, scale) in enumerate(FACTORS):
        def sep(kx, ky):
            return cv2.sepFilter2D(x, cv2.CV_64F, kx, ky, borderType=cv2.BORDER_REFLECT)
        real = sep(a.real, b.real) - sep(a.imag, b.imag)
        imag = sep(a.real, b.imag) + sep(a.imag, b.real)
        magnitude = scale * np.hypot(real, imag)
        out[2 * k], out[2 * k + 1] = magnitude.mean(), magnitude.var()
    return out


def skimage_bank(img):
    return reference.gabor_bank_batch(img[None])[0]


@pytest.mark.parametrize("size", SIZES)
def test_gabor_bank_featrs(benchmark, size):
    _setup(benchmark, f"gabor_bank {size}px", "featrs")
    out = benchmark(featrs.gabor_bank_batch, image(size)[None], n_threads=1)
    np.testing.assert_allclose(out[0], skimage_bank(image(size)), rtol=1e-9, atol=0)


@pytest.mark.parametrize("size", SIZES)
def test_gabor_bank_skimage(benchmark, size):
    _setup(benchmark, f"gabor_bank {size}px", "skimage")
    benchmark.pedantic(skimage_bank, args=(image(size),), rounds=5 if size < 256 else 3, iterations=1)


@pytest.mark.parametrize("size", SIZES)
def test_gabor_bank_opencv(benchmark, size):
    _setup(benchmark, f"gabor_bank {size}px", "opencv")
    out = benchmark(opencv_bank, image(size))
    np.testing.assert_allclose(out, skimage_bank(image(size)), rtol=1e-9, atol=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_gabor_batch(benchmark, threads):
    _setup(benchmark, "gabor_batch 64x128px", f"featrs-{threads}t")
    images = stack(64, 128)
    out = benchmark(featrs.gabor_bank_batch, images, n_threads=threads)
    assert out.shape == (64, 32)
