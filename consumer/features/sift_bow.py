"""SIFT descriptors (OpenCV) turned into fixed-length vectors by a bag of visual words.

Each image gives a variable number ``k`` of 128-D SIFT descriptors. A codebook of
``n_words`` visual words is learned by k-means over the training images' descriptors;
an image is then encoded as the normalized histogram of its descriptors' nearest words.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DESCRIPTOR_SIZE = 128
#: Cap on the descriptors k-means sees; more adds time, not quality.
MAX_CODEBOOK_SAMPLES = 200_000


def descriptors(image: np.ndarray, config) -> np.ndarray:
    """SIFT descriptors of one grey image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W)
    config : FeatureConfig
        Uses ``sift_max_keypoints``, ``sift_contrast_threshold``, ``sift_edge_threshold``
        and ``sift_sigma``.

    Returns
    -------
    ndarray of float32, shape (k, 128)
        ``k`` may be 0 (a flat image has no keypoints).
    """
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or image.size == 0:
        raise ValueError(f"SIFT needs a non-empty (H, W) uint8 image, got dtype {image.dtype} shape {image.shape}")
    sift = cv2.SIFT_create(nfeatures=config.sift_max_keypoints,
                           contrastThreshold=config.sift_contrast_threshold,
                           edgeThreshold=config.sift_edge_threshold,
                           sigma=config.sift_sigma)
    _, desc = sift.detectAndCompute(np.ascontiguousarray(image), None)
    if desc is None:
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    # OpenCV may return a few more than nfeatures when responses tie.
    return np.ascontiguousarray(desc[: config.sift_max_keypoints], dtype=np.float32)


def to_bytes(desc: np.ndarray) -> bytes:
    """Serialize ``(k, 128)`` float32 descriptors (little-endian) for a binary column."""
    desc = np.asarray(desc, dtype="<f4")
    if desc.ndim != 2 or desc.shape[1] != DESCRIPTOR_SIZE:
        raise ValueError(f"descriptors must have shape (k, {DESCRIPTOR_SIZE}), got {desc.shape}")
    return desc.tobytes()


def from_bytes(blob: bytes | None) -> np.ndarray:
    """Inverse of :func:`to_bytes`; ``None`` means no keypoints."""
    if blob is None:
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    if len(blob) % (4 * DESCRIPTOR_SIZE):
        raise ValueError(f"SIFT descriptor blob of {len(blob)} bytes is not a whole number of "
                         f"{DESCRIPTOR_SIZE}-float32 descriptors")
    return np.frombuffer(blob, dtype="<f4").reshape(-1, DESCRIPTOR_SIZE).astype(np.float32)


def learn_codebook(descriptor_arrays: Sequence[np.ndarray], n_words: int, seed: int = 0) -> np.ndarray:
    """Learn ``n_words`` visual words by mini-batch k-means.

    Parameters
    ----------
    descriptor_arrays : sequence of ndarray (k_i, 128)
        Descriptors of each training image (some may be empty).
    n_words : int
        Codebook size.
    seed : int
        Seed of the subsampling and of k-means.

    Returns
    -------
    ndarray of float32, shape (n_words, 128)

    Raises
    ------
    ValueError
        With fewer distinct descriptors than ``n_words``.
    """
    from sklearn.cluster import MiniBatchKMeans

    if int(n_words) < 1:
        raise ValueError(f"n_words must be >= 1, got {n_words}")
    arrays = [_check(a) for a in descriptor_arrays]
    stacked = np.concatenate(arrays) if arrays else np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    n_distinct = len(np.unique(stacked, axis=0)) if len(stacked) else 0
    if n_distinct < n_words:
        raise ValueError(f"cannot learn {n_words} visual words from {n_distinct} distinct SIFT descriptors "
                         f"({len(arrays)} images): lower sift.n_words, train on more images or "
                         f"send larger images (SIFT finds few keypoints in small images)")
    rng = np.random.default_rng(seed)
    if len(stacked) > MAX_CODEBOOK_SAMPLES:
        stacked = stacked[rng.choice(len(stacked), MAX_CODEBOOK_SAMPLES, replace=False)]
    kmeans = MiniBatchKMeans(n_clusters=int(n_words), random_state=seed, n_init=3,
                             batch_size=max(1024, 3 * int(n_words)))
    kmeans.fit(stacked)
    return kmeans.cluster_centers_.astype(np.float32)


def encode(descriptor_arrays: Sequence[np.ndarray], codebook: np.ndarray) -> np.ndarray:
    """Bag-of-visual-words histograms, each summing to 1 (all zeros without keypoints).

    Returns
    -------
    ndarray of float32, shape (N, n_words)
    """
    codebook = np.asarray(codebook, dtype=np.float32)
    if codebook.ndim != 2 or codebook.shape[1] != DESCRIPTOR_SIZE or len(codebook) == 0:
        raise ValueError(f"codebook must have shape (n_words, {DESCRIPTOR_SIZE}), got {codebook.shape}")
    word_norms = (codebook.astype(np.float64) ** 2).sum(axis=1)
    out = np.zeros((len(descriptor_arrays), len(codebook)), np.float32)
    for i, desc in enumerate(descriptor_arrays):
        desc = _check(desc).astype(np.float64)
        if len(desc) == 0:
            continue
        # argmin ||d - w||^2 = argmin (||w||^2 - 2 d.w); ||d||^2 is constant per row.
        nearest = np.argmin(word_norms[None, :] - 2.0 * desc @ codebook.T.astype(np.float64), axis=1)
        counts = np.bincount(nearest, minlength=len(codebook))
        out[i] = counts / counts.sum()
    return out


def _check(desc) -> np.ndarray:
    desc = np.asarray(desc, dtype=np.float32)
    if desc.ndim != 2 or desc.shape[1] != DESCRIPTOR_SIZE:
        raise ValueError(f"descriptors must have shape (k, {DESCRIPTOR_SIZE}), got {desc.shape}")
    if not np.isfinite(desc).all():
        raise ValueError("descriptors contain NaN or infinity")
    return desc
