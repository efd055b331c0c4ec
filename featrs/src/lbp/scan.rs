//! The exact scan: every neighbour of a whole row at once, over a zero-padded float64
//! copy of the image, with skimage's operations in skimage's order.
use super::{Lbp, Method};
use crate::error::{FeatError, Result};
use crate::value_err;

impl Lbp {
    /// Evaluate the neighbours row by row and hand each row's patterns (or variances) to `f`.
    pub(super) fn scan<T: Copy + Into<f64>>(&self, plan: &Plan, image: &[T], f: impl FnMut(usize, Row<'_>)) -> Result<()> {
        if image.len() != plan.rows * plan.cols {
            return value_err!(
                "image buffer holds {} values, expected {} x {}",
                image.len(),
                plan.rows,
                plan.cols
            );
        }
        if plan.columns.len() != self.p {
            return Err(FeatError::Internal("plan made for another operator".into()));
        }
        let padded = Padded::new(image, plan.rows, plan.cols, plan.pad)?;
        scan_rows_simd(self, plan, &padded, f);
        Ok(())
    }

    #[inline(always)]
    fn scan_rows(&self, plan: &Plan, padded: &Padded, mut f: impl FnMut(usize, Row<'_>)) {
        let (p, cols, pad) = (self.p, plan.cols, plan.pad);
        let var = self.method == Method::Var;
        let mut masks = vec![0u64; cols];
        let mut texture = vec![0f64; cols];
        let mut sum = vec![0f64; cols];
        let mut sum_sq = vec![0f64; cols];
        for r in 0..plan.rows {
            let center = &padded.row(r as isize)[pad..pad + cols];
            masks.iter_mut().for_each(|m| *m = 0);
            if var {
                sum.iter_mut().for_each(|s| *s = 0.0);
                sum_sq.iter_mut().for_each(|s| *s = 0.0);
            }
            for i in 0..p {
                let bit = 1u64 << i;
                let Some(w) = &plan.columns[i] else {
                    // Every read falls outside the image: skimage interpolates zeros.
                    texture.iter_mut().for_each(|t| *t = 0.0);
                    set_bits(&mut masks, &texture, center, bit);
                    if var {
                        accumulate(&mut sum, &mut sum_sq, &texture);
                    }
                    continue;
                };
                let fr = r as f64 + self.rp[i];
                let (lo, hi) = (fr.floor(), fr.ceil());
                let dr = fr - lo;
                let top = padded.row(lo as isize);
                if w.integral && dr == 0.0 && !var {
                    // On the pixel grid: (1 - 0) * a + 0 * b == a (finite a, b), compare directly.
                    set_bits(&mut masks, &top[w.left..w.left + cols], center, bit);
                    continue;
                }
                if var {
                    w.interpolate(top, padded.row(hi as isize), dr, &mut texture);
                    set_bits(&mut masks, &texture, center, bit);
                    accumulate(&mut sum, &mut sum_sq, &texture);
                } else {
                    w.interpolate_bits(top, padded.row(hi as isize), dr, center, &mut masks, bit);
                }
            }
            if var {
                let pf = p as f64;
                for (s, &q) in sum.iter_mut().zip(&sum_sq) {
                    // skimage: var_ = (var_ - (sum_ * sum_) / P) / P, NaN when zero.
                    let v = (q - (*s * *s) / pf) / pf;
                    *s = if v != 0.0 { v } else { f64::NAN };
                }
                f(r, Row::Variances(&sum));
            } else {
                f(r, Row::Patterns(&masks));
            }
        }
    }
}

crate::simd::multiversion! {
    /// [`Lbp::scan_rows`] compiled for the best instruction set (8 lanes of f64 with
    /// AVX-512, 4 with AVX2); the same arithmetic.
    fn scan_rows_simd(lbp: &Lbp, plan: &Plan, padded: &Padded, f: impl FnMut(usize, Row<'_>)) {
        avx512("avx512f,avx512bw") => Lbp::scan_rows,
        avx2("avx2") => Lbp::scan_rows,
        _ => Lbp::scan_rows,
    }
}

/// `masks[c] |= bit` where `texture[c] - center[c] >= 0` (skimage's test, as written).
#[inline(always)]
pub(crate) fn set_bits(masks: &mut [u64], texture: &[f64], center: &[f64], bit: u64) {
    for ((m, &t), &c) in masks.iter_mut().zip(texture).zip(center) {
        *m |= if t - c >= 0.0 { bit } else { 0 };
    }
}

/// skimage's running `sum_ += t` and `var_ += t * t`, neighbour by neighbour.
#[inline(always)]
pub(crate) fn accumulate(sum: &mut [f64], sum_sq: &mut [f64], texture: &[f64]) {
    for ((s, q), &t) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(texture) {
        *s += t;
        *q += t * t;
    }
}

/// Per-size preparation of an [`Lbp`]: zero padding and each neighbour's column weights.
#[derive(Debug)]
pub struct Plan {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) pad: usize,
    /// None for a neighbour that lies outside the image for every pixel.
    pub(super) columns: Vec<Option<ColumnWeights>>,
}

/// One output row: bit patterns (bit `i` = neighbour `i`), or `var` values.
pub(super) enum Row<'a> {
    Patterns(&'a [u64]),
    Variances(&'a [f64]),
}

/// The image as float64 with `pad` zero rows/columns on every side (skimage's cval = 0).
pub(crate) struct Padded {
    data: Vec<f64>,
    width: usize,
    pad: usize,
    rows: usize,
}

impl Padded {
    fn new<T: Copy + Into<f64>>(image: &[T], rows: usize, cols: usize, pad: usize) -> Result<Self> {
        let width = cols + 2 * pad;
        let height = rows + 2 * pad;
        let len = width
            .checked_mul(height)
            .filter(|&n| n <= isize::MAX as usize / 8)
            .ok_or_else(|| FeatError::Value("image too large".into()))?;
        let mut data = vec![0f64; len];
        for (r, src) in image.chunks_exact(cols).enumerate() {
            let dst = &mut data[(r + pad) * width + pad..(r + pad) * width + pad + cols];
            dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s.into());
        }
        Ok(Padded { data, width, pad, rows })
    }

    /// Padded row for image row `r` (`-pad <= r < rows + pad`).
    #[inline]
    fn row(&self, r: isize) -> &[f64] {
        let pr = (r + self.pad as isize) as usize;
        debug_assert!(pr < self.rows + 2 * self.pad);
        &self.data[pr * self.width..(pr + 1) * self.width]
    }
}

/// Column part of one neighbour's bilinear interpolation, tabulated for every column.
#[derive(Debug)]
pub(super) struct ColumnWeights {
    /// Offset in a padded row of column 0's left / right sample.
    left: usize,
    right: usize,
    /// `1 - dc` and `dc` per column, `dc = (c + cp) - floor(c + cp)` as skimage computes it.
    one_minus_dc: Vec<f64>,
    dc: Vec<f64>,
    /// `dc == 0` everywhere: the sample is exactly the left pixel.
    integral: bool,
}

impl ColumnWeights {
    pub(super) fn new(cp: f64, cols: usize, pad: usize) -> Result<Self> {
        let first_lo = cp.floor() as isize;
        let first_hi = cp.ceil() as isize;
        let mut dc = Vec::with_capacity(cols);
        for c in 0..cols {
            let fc = c as f64 + cp;
            let (lo, hi) = (fc.floor(), fc.ceil());
            if lo as isize - c as isize != first_lo || hi as isize - c as isize != first_hi {
                // Offsets rounded like skimage's (5 decimals) never get here.
                return value_err!(
                    "neighbour column offset {cp} is not uniform across {cols} columns: \
                     round the offsets to 5 decimals as skimage does"
                );
            }
            dc.push(fc - lo);
        }
        let one_minus_dc = dc.iter().map(|d| 1.0 - d).collect();
        let integral = dc.iter().all(|&d| d == 0.0);
        Ok(ColumnWeights {
            left: (pad as isize + first_lo) as usize,
            right: (pad as isize + first_hi) as usize,
            one_minus_dc,
            dc,
            integral,
        })
    }

    /// `out[c] = (1 - dr) * top_interp + dr * bottom_interp`, skimage's operation order.
    #[inline(always)]
    fn interpolate(&self, top: &[f64], bottom: &[f64], dr: f64, out: &mut [f64]) {
        let n = out.len();
        if self.integral && dr == 0.0 {
            // (1 - 0) * a + 0 * b == a for finite samples (up to the sign of a zero).
            out.copy_from_slice(&top[self.left..self.left + n]);
            return;
        }
        let one_minus_dr = 1.0 - dr;
        let (tl, tr) = (&top[self.left..self.left + n], &top[self.right..self.right + n]);
        let (bl, br) = (&bottom[self.left..self.left + n], &bottom[self.right..self.right + n]);
        let (w0, w1) = (&self.one_minus_dc[..n], &self.dc[..n]);
        for c in 0..n {
            let t = w0[c] * tl[c] + w1[c] * tr[c];
            let b = w0[c] * bl[c] + w1[c] * br[c];
            out[c] = one_minus_dr * t + dr * b;
        }
    }
}

impl ColumnWeights {
    /// [`ColumnWeights::interpolate`] fused with [`set_bits`]: no texture row in memory.
    #[inline(always)]
    fn interpolate_bits(&self, top: &[f64], bottom: &[f64], dr: f64, center: &[f64], masks: &mut [u64], bit: u64) {
        let n = masks.len();
        let one_minus_dr = 1.0 - dr;
        let (tl, tr) = (&top[self.left..self.left + n], &top[self.right..self.right + n]);
        let (bl, br) = (&bottom[self.left..self.left + n], &bottom[self.right..self.right + n]);
        let (w0, w1, center) = (&self.one_minus_dc[..n], &self.dc[..n], &center[..n]);
        for c in 0..n {
            let t = w0[c] * tl[c] + w1[c] * tr[c];
            let b = w0[c] * bl[c] + w1[c] * br[c];
            let value = one_minus_dr * t + dr * b;
            masks[c] |= if value - center[c] >= 0.0 { bit } else { 0 };
        }
    }
}
