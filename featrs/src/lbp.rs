//! Local binary patterns with scikit-image's numbers.
//!
//! Reproduces `skimage.feature.local_binary_pattern` (0.26): neighbour `i` sits at
//! `(r + rp[i], c + cp[i])` with the offsets rounded to 5 decimals by numpy (the caller
//! passes them, computed exactly as skimage does), its value is skimage's bilinear
//! interpolation with zeros outside the image, evaluated with the same operations in the
//! same order, and bit `i` is set when `value - center >= 0`.
//!
//! Instead of interpolating pixel by pixel, each neighbour is evaluated for a whole image
//! row at once over a zero-padded copy of the image: the interpolation weights depend on
//! the column only through `(c + cp) - floor(c + cp)`, which is tabulated once per
//! neighbour, so the inner loop is branch-free arithmetic over contiguous rows.
use crate::error::{FeatError, Result};
use crate::value_err;

/// LBP methods of `skimage.feature.local_binary_pattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Default,
    Ror,
    Uniform,
    NriUniform,
    Var,
}

impl Method {
    /// Parse skimage's names (case-insensitive, as skimage lower-cases them).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "default" => Ok(Method::Default),
            "ror" => Ok(Method::Ror),
            "uniform" => Ok(Method::Uniform),
            "nri_uniform" => Ok(Method::NriUniform),
            "var" => Ok(Method::Var),
            _ => value_err!(
                "method must be one of 'default', 'ror', 'uniform', 'nri_uniform', 'var', got {name:?}"
            ),
        }
    }

    /// Largest supported `P`: codes of `default`/`ror` are skimage's int32 sums of
    /// `2**i`, the other methods keep the pattern in 64 bits.
    pub fn max_points(self) -> usize {
        match self {
            Method::Default | Method::Ror => 31,
            _ => 64,
        }
    }

    /// Number of distinct codes (histogram bins); `None` for `var`, which is not a code.
    pub fn n_codes(self, p: usize) -> Option<usize> {
        match self {
            Method::Default | Method::Ror => Some(1 << p),
            Method::Uniform => Some(p + 2),
            Method::NriUniform => Some(p * (p - 1) + 3),
            Method::Var => None,
        }
    }
}

/// Largest image side: keeps `c + cp` exact enough that `floor(c + cp) - c` is the same
/// for every column (the padded-row evaluation relies on it).
pub const MAX_SIDE: usize = 1 << 24;

/// Patterns up to this many points are mapped to codes through a lookup table.
const LUT_MAX_POINTS: usize = 12;

/// A configured LBP operator: `P` neighbours at the given offsets, one method.
#[derive(Debug, Clone)]
pub struct Lbp {
    p: usize,
    method: Method,
    rp: Vec<f64>,
    cp: Vec<f64>,
    lut: Option<Vec<u32>>,
}

impl Lbp {
    /// `rp`, `cp`: skimage's `np.round(-R * sin(2*pi*i/P), 5)` and `np.round(R * cos(...), 5)`.
    pub fn new(p: usize, rp: &[f64], cp: &[f64], method: Method) -> Result<Self> {
        if p == 0 || p > method.max_points() {
            return value_err!("P must be in [1, {}] for method {method:?}, got {p}", method.max_points());
        }
        if rp.len() != p || cp.len() != p {
            return value_err!("expected {p} neighbour offsets, got {} and {}", rp.len(), cp.len());
        }
        if rp.iter().chain(cp).any(|v| !v.is_finite()) {
            return value_err!("neighbour offsets must be finite (R must be a finite number)");
        }
        let lut = (method != Method::Var && p <= LUT_MAX_POINTS)
            .then(|| (0..1u64 << p).map(|m| code(m, p, method)).collect());
        Ok(Lbp { p, method, rp: rp.to_vec(), cp: cp.to_vec(), lut })
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Column weights and padding for images of `rows x cols` (reusable across a batch).
    pub fn plan(&self, rows: usize, cols: usize) -> Result<Plan> {
        if rows == 0 || cols == 0 {
            return value_err!("The parameter `image` cannot be an empty array");
        }
        if rows > MAX_SIDE || cols > MAX_SIDE {
            return value_err!("image sides must be at most {MAX_SIDE} pixels, got {rows} x {cols}");
        }
        // A neighbour whose offset reaches a full side away reads only the zero border.
        let inside = |off: f64, side: usize| off.abs() < side as f64;
        let reach = self
            .rp
            .iter()
            .zip(&self.cp)
            .filter(|(&r, &c)| inside(r, rows) && inside(c, cols))
            .map(|(r, c)| r.abs().max(c.abs()).ceil() as usize)
            .max()
            .unwrap_or(0);
        let pad = reach + 1;
        let columns = (0..self.p)
            .map(|i| {
                if inside(self.rp[i], rows) && inside(self.cp[i], cols) {
                    ColumnWeights::new(self.cp[i], cols, pad).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;
        Ok(Plan { rows, cols, pad, columns })
    }

    /// skimage's output: codes (or variances for `var`) as float64, `rows x cols`.
    pub fn codes_into<T: Copy + Into<f64>>(
        &self,
        image: &[T],
        rows: usize,
        cols: usize,
        out: &mut [f64],
    ) -> Result<()> {
        if out.len() != rows * cols {
            return value_err!("output holds {} values, expected {rows} x {cols}", out.len());
        }
        let plan = self.plan(rows, cols)?;
        self.scan(&plan, image, |r, row| {
            let dst = &mut out[r * cols..(r + 1) * cols];
            match row {
                Row::Patterns(masks) => match &self.lut {
                    Some(lut) => dst.iter_mut().zip(masks).for_each(|(d, &m)| *d = lut[m as usize] as f64),
                    None => dst
                        .iter_mut()
                        .zip(masks)
                        .for_each(|(d, &m)| *d = code(m, self.p, self.method) as f64),
                },
                Row::Variances(v) => dst.copy_from_slice(v),
            }
        })
    }

    /// Normalised histogram of the codes: `out[k]` = fraction of pixels with code `k`.
    pub fn histogram_into<T: Copy + Into<f64>>(
        &self,
        image: &[T],
        rows: usize,
        cols: usize,
        out: &mut [f64],
    ) -> Result<()> {
        self.histogram_with(&self.plan(rows, cols)?, image, out)
    }

    /// [`Lbp::histogram_into`] with a [`Plan`] made for this image size.
    pub fn histogram_with<T: Copy + Into<f64>>(&self, plan: &Plan, image: &[T], out: &mut [f64]) -> Result<()> {
        let Some(n_bins) = self.method.n_codes(self.p) else {
            return value_err!("method 'var' gives variances, not codes: it has no histogram");
        };
        if out.len() != n_bins {
            return value_err!("histogram holds {} bins, expected {n_bins}", out.len());
        }
        // Four interleaved counters per code: runs of equal codes (flat regions) do not
        // wait on one memory location.
        let mut counts = vec![0u32; 4 * n_bins];
        self.scan(plan, image, |_, row| {
            if let Row::Patterns(masks) = row {
                match &self.lut {
                    Some(lut) => {
                        for (c, &m) in masks.iter().enumerate() {
                            counts[4 * lut[m as usize] as usize + (c & 3)] += 1;
                        }
                    }
                    None => {
                        for (c, &m) in masks.iter().enumerate() {
                            counts[4 * code(m, self.p, self.method) as usize + (c & 3)] += 1;
                        }
                    }
                }
            }
        })?;
        let size = (plan.rows * plan.cols) as f64;
        for (o, c) in out.iter_mut().zip(counts.chunks_exact(4)) {
            *o = c.iter().map(|&v| v as u64).sum::<u64>() as f64 / size;
        }
        Ok(())
    }

    /// Evaluate the neighbours row by row and hand each row's patterns (or variances) to `f`.
    fn scan<T: Copy + Into<f64>>(&self, plan: &Plan, image: &[T], f: impl FnMut(usize, Row<'_>)) -> Result<()> {
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
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            unsafe { self.scan_rows_avx2(plan, &padded, f) };
            return Ok(());
        }
        self.scan_rows(plan, &padded, f);
        Ok(())
    }

    /// [`Lbp::scan_rows`] compiled for AVX2 (4 lanes of f64); same arithmetic.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_rows_avx2(&self, plan: &Plan, padded: &Padded, f: impl FnMut(usize, Row<'_>)) {
        self.scan_rows(plan, padded, f)
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

/// `masks[c] |= bit` where `texture[c] - center[c] >= 0` (skimage's test, as written).
#[inline(always)]
fn set_bits(masks: &mut [u64], texture: &[f64], center: &[f64], bit: u64) {
    for ((m, &t), &c) in masks.iter_mut().zip(texture).zip(center) {
        *m |= if t - c >= 0.0 { bit } else { 0 };
    }
}

/// skimage's running `sum_ += t` and `var_ += t * t`, neighbour by neighbour.
#[inline(always)]
fn accumulate(sum: &mut [f64], sum_sq: &mut [f64], texture: &[f64]) {
    for ((s, q), &t) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(texture) {
        *s += t;
        *q += t * t;
    }
}

/// Per-size preparation of an [`Lbp`]: zero padding and each neighbour's column weights.
#[derive(Debug)]
pub struct Plan {
    rows: usize,
    cols: usize,
    pad: usize,
    /// None for a neighbour that lies outside the image for every pixel.
    columns: Vec<Option<ColumnWeights>>,
}

/// One output row: bit patterns (bit `i` = neighbour `i`), or `var` values.
enum Row<'a> {
    Patterns(&'a [u64]),
    Variances(&'a [f64]),
}

/// The image as float64 with `pad` zero rows/columns on every side (skimage's cval = 0).
struct Padded {
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
struct ColumnWeights {
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
    fn new(cp: f64, cols: usize, pad: usize) -> Result<Self> {
        let first_lo = cp.floor() as isize;
        let first_hi = cp.ceil() as isize;
        let mut dc = Vec::with_capacity(cols);
        for c in 0..cols {
            let fc = c as f64 + cp;
            let (lo, hi) = (fc.floor(), fc.ceil());
            if lo as isize - c as isize != first_lo || hi as isize - c as isize != first_hi {
                return Err(FeatError::Internal(format!(
                    "neighbour column offset {cp} is not uniform across {cols} columns"
                )));
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

/// skimage's code of one pattern (bit `i` = neighbour `i` >= center), for any method but var.
pub fn code(mask: u64, p: usize, method: Method) -> u32 {
    let n_ones = mask.count_ones() as usize;
    // skimage counts changes between consecutive neighbours, not around the circle.
    let changes = if p > 1 { ((mask ^ (mask >> 1)) & ((1u64 << (p - 1)) - 1)).count_ones() } else { 0 };
    match method {
        Method::Default => mask as u32,
        Method::Ror => {
            let full = (1u64 << p) - 1;
            (0..p)
                .map(|k| (((mask >> k) | (mask << (p - k))) & full) as u32)
                .min()
                .unwrap_or(0)
        }
        Method::Uniform => {
            if changes <= 2 {
                n_ones as u32
            } else {
                p as u32 + 1
            }
        }
        Method::NriUniform => {
            if changes > 2 {
                (p * (p - 1) + 2) as u32
            } else if n_ones == 0 {
                0
            } else if n_ones == p {
                (p * (p - 1) + 1) as u32
            } else {
                let first_one = mask.trailing_zeros() as usize;
                let first_zero = (!mask).trailing_zeros() as usize;
                let rot_index = if first_one == 0 { n_ones - first_zero } else { p - first_one };
                (1 + (n_ones - 1) * p + rot_index) as u32
            }
        }
        Method::Var => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(p: usize, r: f64) -> (Vec<f64>, Vec<f64>) {
        let round5 = |v: f64| (v * 1e5).round_ties_even() / 1e5;
        let a = |i: usize| 2.0 * std::f64::consts::PI * i as f64 / p as f64;
        ((0..p).map(|i| round5(-r * a(i).sin())).collect(), (0..p).map(|i| round5(r * a(i).cos())).collect())
    }

    #[test]
    fn uniform_codes_count_ones_of_uniform_patterns() {
        assert_eq!(code(0b0000_0000, 8, Method::Uniform), 0);
        assert_eq!(code(0b0011_1000, 8, Method::Uniform), 3);
        assert_eq!(code(0b1111_1111, 8, Method::Uniform), 8);
        assert_eq!(code(0b0101_0000, 8, Method::Uniform), 9);
        // The wrap-around change between bits 7 and 0 is not counted by skimage.
        assert_eq!(code(0b1000_0001, 8, Method::Uniform), 2);
    }

    #[test]
    fn ror_is_the_smallest_rotation() {
        assert_eq!(code(0b1000_0000, 8, Method::Ror), 1);
        assert_eq!(code(0b1100_0001, 8, Method::Ror), 0b0000_0111);
    }

    #[test]
    fn nri_uniform_codes_are_distinct_for_uniform_patterns() {
        let p = 8;
        let mut seen = std::collections::HashSet::new();
        for m in 0u64..256 {
            let c = code(m, p, Method::NriUniform);
            assert!(c as usize <= p * (p - 1) + 2);
            if c as usize != p * (p - 1) + 2 {
                assert!(seen.insert(c), "code {c} reused by {m:#010b}");
            }
        }
        assert_eq!(seen.len(), p * (p - 1) + 2);
    }

    #[test]
    fn integral_offsets_compare_pixels_directly() {
        let (rp, cp) = offsets(4, 1.0);
        let lbp = Lbp::new(4, &rp, &cp, Method::Default).unwrap();
        let img = vec![5u8; 3 * 3];
        let mut out = vec![0.0; 9];
        lbp.codes_into(&img, 3, 3, &mut out).unwrap();
        // Neighbours: 0 right, 1 up, 2 left, 3 down; outside the image reads zero.
        assert_eq!(out[4], 15.0);
        assert_eq!(out[0], ((1 << 0) | (1 << 3)) as f64);
        assert_eq!(out[8], ((1 << 1) | (1 << 2)) as f64);
    }

    #[test]
    fn zero_image_sets_every_bit() {
        let (rp, cp) = offsets(8, 2.5);
        let lbp = Lbp::new(8, &rp, &cp, Method::Default).unwrap();
        let img = vec![0u8; 7 * 6];
        let mut out = vec![0.0; 42];
        lbp.codes_into(&img, 7, 6, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 255.0));
    }

    #[test]
    fn huge_radius_reads_only_zeros() {
        let (rp, cp) = offsets(4, 1e6);
        let lbp = Lbp::new(4, &rp, &cp, Method::Default).unwrap();
        let img: Vec<u8> = vec![0, 1, 2, 0];
        let mut out = vec![0.0; 4];
        lbp.codes_into(&img, 2, 2, &mut out).unwrap();
        assert_eq!(out, vec![15.0, 0.0, 0.0, 15.0]);
    }

    #[test]
    fn histogram_sums_to_one() {
        let (rp, cp) = offsets(8, 1.5);
        let lbp = Lbp::new(8, &rp, &cp, Method::Uniform).unwrap();
        let img: Vec<u8> = (0..37 * 41).map(|i| ((i * 7919) % 251) as u8).collect();
        let mut h = vec![0.0; 10];
        lbp.histogram_into(&img, 37, 41, &mut h).unwrap();
        assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_parameters_are_value_errors() {
        assert!(Lbp::new(0, &[], &[], Method::Uniform).is_err());
        let (rp, cp) = offsets(32, 1.0);
        assert!(Lbp::new(32, &rp, &cp, Method::Default).is_err());
        assert!(Lbp::new(32, &rp, &cp, Method::Uniform).is_ok());
        assert!(Lbp::new(2, &[0.0, f64::NAN], &[1.0, 0.0], Method::Uniform).is_err());
    }
}
