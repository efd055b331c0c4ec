//! LBP code histograms of every tile of a `grid x grid` split, for several operators.
//!
//! Each tile is an image of its own, as when skimage is called on the tile (zeros
//! outside it). A tile is copied once into a zero-padded float32 plane that every
//! operator reads; the sampling plans (offsets, weights) are made once per tile shape
//! and reused for every image of a batch.
use std::sync::{Arc, Mutex, OnceLock};

use super::fast_plan::{plane_width, FastPlan};
use super::{Lbp, Method, Plan};
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

    /// The plan of `ops` for `rows x cols` images split `grid x grid`, shared with earlier
    /// calls that asked for the same: a stream asks batch after batch, and making the plans
    /// of the defaults (three operators, nine tiles) cost about 2 ms per call at 512 px,
    /// more than a third of counting one image.
    pub fn shared(ops: &[Lbp], rows: usize, cols: usize, grid: usize) -> Result<Arc<GridPlan>> {
        let key = PlanKey::new(ops, rows, cols, grid);
        let lock = || PLANS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, plan)) = lock().iter().find(|(k, _)| *k == key) {
            return Ok(plan.clone());
        }
        // Made outside the lock; a caller that made the same plan meanwhile keeps its own.
        let plan = Arc::new(GridPlan::new(ops, rows, cols, grid)?);
        let mut plans = lock();
        if let Some((_, kept)) = plans.iter().find(|(k, _)| *k == key) {
            return Ok(kept.clone());
        }
        if plans.len() == CACHED_PLANS {
            plans.remove(0);
        }
        plans.push((key, plan.clone()));
        Ok(plan)
    }

    /// Values per image: for each operator, for each tile, its histogram.
    pub fn row_len(&self) -> usize {
        self.n_bins.iter().map(|n| n * self.tiles.len()).sum()
    }
}

/// Plans kept for [`GridPlan::shared`], oldest first. A plan is a few KiB to a few MiB
/// (its offsets grow with the tiles' sides).
const CACHED_PLANS: usize = 8;
static PLANS: OnceLock<Mutex<Vec<(PlanKey, Arc<GridPlan>)>>> = OnceLock::new();

/// What a [`GridPlan`] is made from: each operator's points, method and exact offsets, the
/// image shape and the grid.
#[derive(Debug, PartialEq, Eq)]
struct PlanKey {
    ops: Vec<(usize, Method, Vec<u64>, Vec<u64>)>,
    rows: usize,
    cols: usize,
    grid: usize,
}

impl PlanKey {
    fn new(ops: &[Lbp], rows: usize, cols: usize, grid: usize) -> PlanKey {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
        let ops = ops.iter().map(|op| (op.p, op.method, bits(&op.rp), bits(&op.cp))).collect();
        PlanKey { ops, rows, cols, grid }
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
