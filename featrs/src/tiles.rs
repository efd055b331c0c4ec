//! Tiles of a `grid x grid` split of an image, cut as the consumer cuts them.
use crate::error::Result;
use crate::value_err;

/// A tile: rows `r0..r1`, columns `c0..c1` of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub r0: usize,
    pub r1: usize,
    pub c0: usize,
    pub c1: usize,
}

/// numpy's `linspace(0, side, grid + 1).astype(int)`: `k * (side / grid)` truncated, the
/// last edge exactly `side`.
pub fn edges(side: usize, grid: usize) -> Vec<usize> {
    let step = side as f64 / grid as f64;
    let mut e: Vec<usize> = (0..=grid).map(|k| (k as f64 * step) as usize).collect();
    e[grid] = side;
    e
}

/// The tiles of a `grid x grid` split of `rows x cols`, row-major.
pub fn tiles(rows: usize, cols: usize, grid: usize) -> Result<Vec<Tile>> {
    if grid == 0 || grid > rows || grid > cols {
        return value_err!("grid must be in [1, min(H, W)] = [1, {}] for {rows} x {cols} images, got {grid}", rows.min(cols));
    }
    let (re, ce) = (edges(rows, grid), edges(cols, grid));
    Ok((0..grid * grid)
        .map(|k| Tile { r0: re[k / grid], r1: re[k / grid + 1], c0: ce[k % grid], c1: ce[k % grid + 1] })
        .collect())
}
