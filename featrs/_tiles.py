"""Tiles of a ``grid x grid`` split, as the consumer cuts them (and the Rust kernels do)."""
from __future__ import annotations

import numpy as np

from . import _validate

#: Largest grid side: beyond it tiles are single pixels of any image that fits in memory.
MAX_GRID = 4096


def grid_size(grid, rows: int, cols: int) -> int:
    """``grid`` as an int in ``[1, min(rows, cols)]`` (every tile at least one pixel), or raise."""
    return _validate.integer(grid, "grid", 1, max(1, min(rows, cols, MAX_GRID)))


def tile_slices(rows: int, cols: int, grid: int) -> list[tuple[slice, slice]]:
    """Row and column slices of each tile, row-major.

    Edges are ``np.linspace(0, side, grid + 1).astype(int)``.
    """
    r = np.linspace(0, rows, grid + 1).astype(int)
    c = np.linspace(0, cols, grid + 1).astype(int)
    return [(slice(r[i], r[i + 1]), slice(c[j], c[j + 1])) for i in range(grid) for j in range(grid)]
