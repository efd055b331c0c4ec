"""SIFT bag of visual words: descriptors, codebook, encoding."""
from __future__ import annotations

import numpy as np
import pytest

from consumer.features import sift_bow
from consumer.features import FeatureConfig


def _textured(seed: int, size: int = 96) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.uint8)
    for _ in range(12):
        x, y = rng.integers(8, size - 8, size=2)
        cv2.circle(img, (int(x), int(y)), int(rng.integers(3, 9)), int(rng.integers(80, 256)), -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


def test_descriptors_shape_and_cap():
    config = FeatureConfig(features=("sift",), sift_max_keypoints=5)
    desc = sift_bow.descriptors(_textured(0), config)
    assert desc.dtype == np.float32
    assert desc.ndim == 2 and desc.shape[1] == 128
    assert 1 <= len(desc) <= 5


def test_flat_image_has_no_keypoints_and_encodes_to_zeros():
    desc = sift_bow.descriptors(np.full((64, 64), 77, np.uint8), FeatureConfig(features=("sift",)))
    assert desc.shape == (0, 128)
    codebook = np.random.default_rng(0).random((6, 128), dtype=np.float32)
    bow = sift_bow.encode([desc], codebook)
    assert bow.shape == (1, 6)
    assert not bow.any()


def test_codebook_and_encode_shapes_and_normalization():
    config = FeatureConfig(features=("sift",))
    arrays = [sift_bow.descriptors(_textured(s), config) for s in range(6)]
    codebook = sift_bow.learn_codebook(arrays, n_words=8, seed=0)
    assert codebook.shape == (8, 128) and codebook.dtype == np.float32
    again = sift_bow.learn_codebook(arrays, n_words=8, seed=0)
    np.testing.assert_array_equal(codebook, again)  # same seed, same words
    bow = sift_bow.encode(arrays + [np.zeros((0, 128), np.float32)], codebook)
    assert bow.shape == (7, 8) and bow.dtype == np.float32
    np.testing.assert_allclose(bow[:6].sum(axis=1), 1.0, rtol=1e-6)
    assert not bow[6].any()


def test_encode_assigns_nearest_word():
    codebook = np.zeros((3, 128), np.float32)
    codebook[1, 0] = 10
    codebook[2, 1] = 10
    desc = np.zeros((4, 128), np.float32)
    desc[0, 0] = 9   # word 1
    desc[1, 1] = 11  # word 2
    desc[2, 1] = 8   # word 2
    # desc[3] is the origin: word 0
    np.testing.assert_allclose(sift_bow.encode([desc], codebook)[0], [0.25, 0.25, 0.5])


def test_too_few_descriptors_for_the_codebook_is_a_clear_error():
    few = [np.random.default_rng(0).random((3, 128), dtype=np.float32), np.zeros((0, 128), np.float32)]
    with pytest.raises(ValueError, match="cannot learn 10 visual words from 3 distinct"):
        sift_bow.learn_codebook(few, n_words=10)


def test_bytes_round_trip_and_bad_blob():
    desc = np.random.default_rng(1).random((5, 128), dtype=np.float32)
    np.testing.assert_array_equal(sift_bow.from_bytes(sift_bow.to_bytes(desc)), desc)
    assert sift_bow.from_bytes(None).shape == (0, 128)
    with pytest.raises(ValueError, match="whole number"):
        sift_bow.from_bytes(b"\x00" * 100)


def test_bad_image_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        sift_bow.descriptors(np.zeros((32, 32), np.float32), FeatureConfig())
