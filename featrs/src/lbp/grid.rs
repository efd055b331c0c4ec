//! LBP code histograms of every tile of a `grid x grid` split, for several operators.
//!
//! Each tile is an image of its own, as when skimage is called on the tile (zeros
//! outside it). A tile is copied once into a zero-padded float32 plane that every
//! operator reads; the sampling plans (offsets, weights) are made once per tile shape
//! and reused for every image of a batch.
use super::fast::{plane_width, FastPlan};
use super::{Lbp, Plan};
use crate::error::{FeatError, Result};
use crate::tiles::{tiles, Tile};
use crate::value_err;

#[derive(Debug)]
enum TilePlan {
    Fast(FastPlan),
    Exact(Plan),
}

/// Everything about a grid of tiles and a set of operators that does not depend on pixels.
#[derive(Debug)]
pub struct GridPlan {
    rows: usize,
    cols: usize,
    tiles: Vec<Tile>,
    pad: usize,
    /// `plans[op][tile]`.
    plans: Vec<Vec<TilePlan>>,
    n_bins: Vec<usize>,
}

impl GridPlan {
    pub fn new(ops: &[Lbp], rows: usize, cols: usize, grid: usize) -> Result<GridPlan> {
        if ops.is_empty() {
            return value_err!("at least one (P, R) pair is needed");
        }
        let tiles = tiles(rows, cols, grid)?;
        let n_bins = ops
            .iter()
            .map(|op| op.method.n_codes(op.p).ok_or_else(|| FeatError::Value("method 'var' has no code histogram".into())))
            .collect::<Result<Vec<_>>>()?;
        let shape = |t: &Tile| (t.r1 - t.r0, t.c1 - t.c0);
        let pad = ops
            .iter()
            .flat_map(|op| tiles.iter().map(move |t| op.fast_pad(shape(t).0, shape(t).1)))
            .max()
            .unwrap_or(1);
        let plans = ops
            .iter()
            .map(|op| {
                tiles
                    .iter()
                    .map(|t| {
                        let (h, w) = shape(t);
                        Ok(match op.fast_plan(h, w, pad)? {
                            Some(fast) => TilePlan::Fast(fast),
                            None => TilePlan::Exact(op.plan(h, w)?),
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GridPlan { rows, cols, tiles, pad, plans, n_bins })
    }

    /// Values per image: for each operator, for each tile, its histogram.
    pub fn row_len(&self) -> usize {
        self.n_bins.iter().map(|n| n * self.tiles.len()).sum()
    }
}

/// Reusable memory of [`histogram_grid`] (one per thread in batches).
#[derive(Default)]
pub struct GridScratch {
    plane: Vec<f32>,
    tile: Vec<u8>,
    counts: Vec<u32>,
    rows: Vec<u32>,
}

/// Normalised code histograms of every tile for every operator of `plan`, into `out`
/// ([`GridPlan::row_len`] values: operator-major, then tile, then code).
pub fn histogram_grid(ops: &[Lbp], plan: &GridPlan, image: &[u8], s: &mut GridScratch, out: &mut [f64]) -> Result<()> {
    if image.len() != plan.rows * plan.cols {
        return value_err!("image holds {} values, expected {} x {}", image.len(), plan.rows, plan.cols);
    }
    if out.len() != plan.row_len() || ops.len() != plan.plans.len() {
        return value_err!("output holds {} values, expected {}", out.len(), plan.row_len());
    }
    let pad = plan.pad;
    let n_tiles = plan.tiles.len();
    let mut base = vec![0usize; ops.len()];
    for k in 1..ops.len() {
        base[k] = base[k - 1] + n_tiles * plan.n_bins[k - 1];
    }
    for (t, tile) in plan.tiles.iter().enumerate() {
        let (h, w) = (tile.r1 - tile.r0, tile.c1 - tile.c0);
        // Every operator's plan for this tile shares the padding and so the plane layout.
        let width = plane_width(w, pad);
        s.plane.clear();
        s.plane.resize(width * (h + 2 * pad), 0.0);
        for r in 0..h {
            let src = &image[(tile.r0 + r) * plan.cols + tile.c0..][..w];
            let dst = &mut s.plane[(r + pad) * width + pad..][..w];
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v as f32);
        }
        for (k, op) in ops.iter().enumerate() {
            let n_bins = plan.n_bins[k];
            let dst = &mut out[base[k] + t * n_bins..][..n_bins];
            match &plan.plans[k][t] {
                TilePlan::Fast(fast) => {
                    s.counts.clear();
                    if s.counts.try_reserve(4 * n_bins).is_err() {
                        return Err(FeatError::Memory(format!("cannot allocate the counts of {n_bins} codes")));
                    }
                    s.counts.resize(4 * n_bins, 0);
                    op.count_fast(fast, &s.plane, &mut s.counts, &mut s.rows)?;
                    let size = (h * w) as f64;
                    for (o, c) in dst.iter_mut().zip(s.counts.chunks_exact(4)) {
                        *o = c.iter().map(|&v| v as u64).sum::<u64>() as f64 / size;
                    }
                }
                TilePlan::Exact(exact) => {
                    s.tile.clear();
                    for r in tile.r0..tile.r1 {
                        s.tile.extend_from_slice(&image[r * plan.cols + tile.c0..][..w]);
                    }
                    op.histogram_with(exact, &s.tile, dst)?;
                }
            }
        }
    }
    Ok(())
}
