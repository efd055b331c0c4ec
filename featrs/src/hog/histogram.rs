//! Cell histograms: one pass over the pixels, skimage's float32 sums, numpy settling
//! the rare edge cases.
use std::collections::BTreeSet;

use super::bins::*;
use super::gradient::*;
use super::{HogParams, Oracle, Work};
use crate::error::{FeatError, Result};

/// Per-cell orientation histograms as skimage's `hog_histograms` fills them.
///
/// Returns `n_cells.0 x n_cells.1 x orientations` cell values widened to f64.
#[inline(always)]
///
/// `table` ([`byte_gradient_bins`]) replaces the angle computation for byte images.
pub(crate) fn cell_histograms<V: Copy, W: Work, F: Fn(V) -> W>(
    grid: &Grid<'_, V, F>,
    n_cells: (usize, usize),
    p: &HogParams,
    table: Option<&[u8]>,
    oracle: &dyn Oracle,
) -> Result<Vec<f64>> {
    let n = p.orientations;
    let bins = Bins::new(n);
    let (ncr, ncc) = n_cells;
    let (cr, cc) = p.cell;
    let mut hist = vec![0f32; ncr * ncc * n];
    let width = ncc * cc;
    let mut gx = vec![0f64; width];
    let mut gy = vec![0f64; width];
    let mut bin = vec![0u32; width];
    let mut mag = vec![0f64; width];
    let no_overrides = Overrides::new();
    let mut ties = Vec::new();
    // Cells holding a pixel whose bin or channel numpy must settle.
    let mut unsettled = BTreeSet::new();
    for yi in 0..ncr {
        let cell_row = &mut hist[yi * ncc * n..(yi + 1) * ncc * n];
        for y in yi * cr..(yi + 1) * cr {
            grid.gradient_row(y, &mut gx, &mut gy, &no_overrides, Some(&mut ties));
            match table {
                Some(_) => bins.table_row(&gx, &gy, &mut mag, &mut bin),
                None => bins.bin_row(&gx, &gy, &mut mag, &mut bin),
            }
            for xi in 0..ncc {
                let h = &mut cell_row[xi * n..(xi + 1) * n];
                for x in xi * cc..(xi + 1) * cc {
                    let mut b = match table {
                        // `bin` holds table positions (see `bin_row_from_table`).
                        Some(table) => match table[bin[x] as usize] {
                            TABLE_ZERO => NO_BIN,
                            TABLE_SLOW => UNSETTLED,
                            k => k as u32,
                        },
                        None => bin[x],
                    };
                    if b >= UNSETTLED {
                        if b == NO_BIN {
                            continue;
                        }
                        b = bins.bin(gy[x], gx[x]);
                        if b & ON_BOUNDARY != 0 {
                            b &= !ON_BOUNDARY;
                            unsettled.insert((yi, xi));
                        }
                        if b == NO_BIN {
                            continue;
                        }
                    }
                    // skimage: `float total; total += magnitude` (double add, float store).
                    let t = &mut h[b as usize];
                    *t = (*t as f64 + mag[x]) as f32;
                }
            }
        }
    }
    let overrides = settle_channels::<W>(&ties, oracle)?;
    unsettled.extend(overrides.keys().map(|&(y, x)| (y / cr, x / cc)));
    if !unsettled.is_empty() {
        resum_cells(&mut hist, &unsettled, grid, n_cells, p, &bins, &overrides, oracle)?;
    }
    // skimage's cell value: `total / (cell_rows * cell_columns)`, a float32 division.
    let area = (cr * cc) as f32;
    Ok(hist.into_iter().map(|t| f64::from(t / area)).collect())
}

/// numpy's channel choice for near ties, where it differs from ours.
pub(crate) fn settle_channels<W: Work>(ties: &[NearTie], oracle: &dyn Oracle) -> Result<Overrides> {
    let mut overrides = Overrides::new();
    if ties.is_empty() {
        return Ok(overrides);
    }
    let gr: Vec<f64> = ties.iter().flat_map(|t| t.gr.iter().copied()).collect();
    let gc: Vec<f64> = ties.iter().flat_map(|t| t.gc.iter().copied()).collect();
    let magnitudes = oracle.magnitudes(&gr, &gc, W::SINGLE)?;
    if magnitudes.len() != gr.len() {
        return Err(FeatError::Internal("oracle returned a wrong number of magnitudes".into()));
    }
    let mut at = 0;
    for t in ties {
        let m = &magnitudes[at..at + t.gr.len()];
        at += t.gr.len();
        // np.argmax: the first maximum.
        let first_max = (1..m.len()).fold(0, |best, ch| if m[ch] > m[best] { ch } else { best });
        if first_max != t.chosen {
            overrides.insert((t.y, t.x), first_max);
        }
    }
    Ok(overrides)
}

/// Sum the given cells again from scratch with numpy's decisions for their edge cases.
///
/// Summing from zero rather than patching keeps skimage's float32 addition order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resum_cells<V: Copy, W: Work, F: Fn(V) -> W>(
    hist: &mut [f32],
    cells: &BTreeSet<(usize, usize)>,
    grid: &Grid<'_, V, F>,
    n_cells: (usize, usize),
    p: &HogParams,
    bins: &Bins,
    overrides: &Overrides,
    oracle: &dyn Oracle,
) -> Result<()> {
    let n = p.orientations;
    let (cr, cc) = p.cell;
    let ncc = n_cells.1;
    let width = ncc * cc;
    let (mut gx, mut gy) = (vec![0f64; width], vec![0f64; width]);
    // Every pixel of every cell, in skimage's order: (cell, magnitude, bin).
    let mut pixels: Vec<((usize, usize), f64, u32)> = Vec::new();
    let mut edge_pixels = Vec::new();
    let (mut edge_gy, mut edge_gx) = (Vec::new(), Vec::new());
    for &(yi, xi) in cells {
        for y in yi * cr..(yi + 1) * cr {
            grid.gradient_row(y, &mut gx, &mut gy, overrides, None);
            for x in xi * cc..(xi + 1) * cc {
                let m = (gx[x] * gx[x] + gy[x] * gy[x]).sqrt();
                let b = if m == 0.0 { NO_BIN } else { bins.bin(gy[x], gx[x]) };
                if b != NO_BIN && b & ON_BOUNDARY != 0 {
                    edge_pixels.push(pixels.len());
                    edge_gy.push(gy[x]);
                    edge_gx.push(gx[x]);
                }
                pixels.push(((yi, xi), m, b & !ON_BOUNDARY));
            }
        }
    }
    if !edge_pixels.is_empty() {
        let decided = oracle.orientations(&edge_gy, &edge_gx)?;
        if decided.len() != edge_pixels.len() {
            return Err(FeatError::Internal("oracle returned a wrong number of orientations".into()));
        }
        for (&i, &o) in edge_pixels.iter().zip(&decided) {
            pixels[i].2 = bins.exact_bin(o);
        }
    }
    for &(yi, xi) in cells {
        hist[(yi * ncc + xi) * n..(yi * ncc + xi + 1) * n].iter_mut().for_each(|t| *t = 0.0);
    }
    for ((yi, xi), m, b) in pixels {
        if b != NO_BIN {
            let t = &mut hist[(yi * ncc + xi) * n + b as usize];
            *t = (*t as f64 + m) as f32;
        }
    }
    Ok(())
}
