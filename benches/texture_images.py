"""Benchmark inputs for GLCM/Gabor: a real chest CT slice (CHESTCT_DATA) or a deterministic
synthetic one (smooth blobs plus noise) when the dataset is not set up."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np


def _dataset_paths() -> list[Path]:
    root = os.environ.get("CHESTCT_DATA")
    if not root or not (Path(root) / "train").is_dir():
        return []
    return sorted(p for p in (Path(root) / "train").rglob("*") if p.suffix.lower() in (".png", ".jpg"))


def _synthetic(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    img = np.zeros((size, size))
    for _ in range(6):
        cy, cx, r = rng.random(3)
        img += 120 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.02 + 0.1 * r))
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@lru_cache(maxsize=None)
def image(size: int, index: int = 0) -> np.ndarray:
    """A ``size x size`` uint8 grayscale image (the ``index``-th of the dataset when available)."""
    paths = _dataset_paths()
    if paths:
        img = cv2.imread(str(paths[index * 7 % len(paths)]), cv2.IMREAD_GRAYSCALE)
        return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
    return _synthetic(index, size)


def stack(n: int, size: int) -> np.ndarray:
    """``n`` different ``size x size`` images as a C-contiguous (n, size, size) uint8 array."""
    return np.stack([image(size, i) for i in range(n)])


def source() -> str:
    return "chest-ctscan" if _dataset_paths() else "synthetic"
