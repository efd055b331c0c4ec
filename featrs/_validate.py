"""Argument checks shared by the featrs façade and the scikit-image reference."""
from __future__ import annotations

import operator

import numpy as np


def image_stack(images, name: str = "images") -> np.ndarray:
    """Return ``images`` as a C-contiguous ``(N, H, W)`` uint8 array, or raise.

    Raises
    ------
    TypeError
        If the array is not uint8 (batch functions take 8-bit images only).
    ValueError
        If it is not 3-D, or an image is empty.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 array of shape (N, H, W), got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got {arr.ndim}-D array of shape {arr.shape}")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


#: Upper bound for ``n_threads``: each distinct value keeps a thread pool alive.
MAX_THREADS = 256


def n_threads(value) -> int | None:
    """``None`` (all cores) or an int in ``[1, MAX_THREADS]``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_THREADS:
        raise ValueError(f"n_threads must be an integer in [1, {MAX_THREADS}] or None, got {value!r}")
    return int(value)


def integer(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``.

    Integral floats (``8.0``) are accepted, as scikit-image accepts them; fractional
    ones and booleans are refused rather than silently truncated.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (or an integral float).
    ValueError
        If it is outside ``[low, high]``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise TypeError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value
