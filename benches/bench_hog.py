"""HOG speed: featrs vs scikit-image vs OpenCV, one thread; batch scaling 1 -> 2 threads.

Configuration of the comparison: 9 orientations, 8x8-pixel cells, 2x2-cell blocks,
L2-Hys (OpenCV's HOGDescriptor defaults with a window the size of the image).
"""
from __future__ import annotations

import cv2
import pytest
from skimage.feature import hog as sk_hog

import featrs

from sample_images import image, source, stack

cv2.setNumThreads(1)
SIZES = (64, 128, 256)
PARAMS = dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys")


def _setup(benchmark, kernel, impl):
    benchmark.group = kernel
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = source()


@pytest.mark.parametrize("size", SIZES)
def test_hog_featrs(benchmark, size):
    _setup(benchmark, f"hog {size}px", "featrs")
    img = image(size)
    out = benchmark(featrs.hog, img, **PARAMS)
    assert out.shape == sk_hog(img, **PARAMS).shape


@pytest.mark.parametrize("size", SIZES)
def test_hog_skimage(benchmark, size):
    _setup(benchmark, f"hog {size}px", "skimage")
    benchmark(sk_hog, image(size), **PARAMS)


@pytest.mark.skipif(not hasattr(cv2, "HOGDescriptor"),
                    reason="OpenCV 5 ships HOGDescriptor only in opencv-contrib-python(-headless)")
@pytest.mark.parametrize("size", SIZES)
def test_hog_opencv(benchmark, size):
    _setup(benchmark, f"hog {size}px", "opencv")
    descriptor = cv2.HOGDescriptor((size, size), (16, 16), (8, 8), (8, 8), 9)
    out = benchmark(descriptor.compute, image(size))
    assert out.size == featrs.hog(image(size), **PARAMS).size


@pytest.mark.parametrize("threads", [1, 2])
def test_hog_batch(benchmark, threads):
    _setup(benchmark, "hog_batch 64x128px", f"featrs-{threads}t")
    images = stack(64, 128)
    out = benchmark(featrs.hog_batch, images, n_threads=threads, **PARAMS)
    assert out.shape[0] == 64
