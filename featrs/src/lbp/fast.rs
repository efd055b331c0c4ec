//! The fast path for uint8 images: skimage's codes, decided in float32 wherever float32
//! decides them, and in skimage's own float64 arithmetic where it does not.
//!
//! A neighbour's interpolated value is compared with the centre pixel. On 8-bit images
//! float32 interpolation with the nominal weights is within [`NEAR`] / 10 of the value
//! skimage computes in float64 (pixels <= 255, weights exact to 1e-9, a few roundings
//! of 2^-24 relative). So wherever `|value - centre| > NEAR` the float32 sign is
//! skimage's sign; the few comparisons inside that band (flat regions, balanced
//! neighbourhoods: under 1 % of them on CT slices) are redone exactly, per pixel, with
//! skimage's per-column and per-row weights and operation order. Centre 0 needs no
//! check: every interpolated value of non-negative pixels is >= 0, so the bit is set.
//!
//! Rows are evaluated whole (16 lanes of f32 with AVX-512), neighbour by neighbour, so
//! every loop is branch-free over contiguous memory.
use super::{code, Lbp, Method};
use crate::error::Result;
use crate::simd::Level;
use crate::value_err;

/// Comparisons closer than this to zero are redone in float64 (see the module docs).
pub(super) const NEAR: f32 = 1.0 / 512.0;
/// Per-column / per-row weights farther than this from the nominal one: use the exact path.
const WEIGHT_SPREAD: f64 = 1e-9;
/// Columns evaluated together (one AVX-512 register of f32).
pub(super) const LANES: usize = 16;
/// Largest P of the fast path (patterns are u32 bit masks).
pub const FAST_MAX_POINTS: usize = 32;

/// How a neighbour is sampled, relative to the centre pixel, in a padded plane.
#[derive(Debug, Clone)]
enum Sample {
    /// Every read falls outside the image: the value is 0.
    Zero,
    /// On the pixel grid: the value is the pixel at `(dr, dc)`.
    Pixel { dr: isize, dc: isize },
    /// Bilinear between rows `top`, `top + 1` ... as skimage computes it.
    Bilinear {
        top: isize,
        bottom: isize,
        left: isize,
        right: isize,
        /// Nominal weights for the float32 pass.
        wr: f32,
        wc: f32,
        /// skimage's exact `dr` per row and `dc` per column for the float64 re-check.
        dr: Vec<f64>,
        dc: Vec<f64>,
        /// skimage sets the bit wherever the four samples equal the centre (see [`flat_sets`]).
        flat_sets: bool,
    },
}

/// A bilinear neighbour for the float32 pass: plane offsets of its four samples from the
/// centre pixel, nominal weights, its bit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quad {
    pub(super) at: [isize; 4],
    pub(super) wr: f32,
    pub(super) wc: f32,
    pub(super) bit: u32,
    /// All ones when skimage sets the bit wherever the four samples equal the centre
    /// ([`flat_sets`]), so the AVX-512 block need not flag those; 0 otherwise.
    pub(super) flat_sets: u32,
}

/// An [`Lbp`] prepared for uint8 images of `rows x cols` in planes padded by `pad`.
#[derive(Debug, Clone)]
pub struct FastPlan {
    rows: usize,
    cols: usize,
    pad: usize,
    samples: Vec<Sample>,
    /// Bits of the [`Sample::Zero`] neighbours: set exactly where the centre is 0.
    pub(super) zero_bits: u32,
    /// Plane offsets and bits of the [`Sample::Pixel`] neighbours.
    pub(super) pixels: Vec<(isize, u32)>,
    pub(super) quads: Vec<Quad>,
    /// Bits of the quads.
    pub(super) quad_bits: u32,
    /// Every quad's `flat_sets` is set.
    pub(super) all_flat_sets: bool,
}

impl FastPlan {
    /// Rows and columns of the images this plan is for.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// `cols` rounded up to whole blocks of columns.
    fn padded_cols(&self) -> usize {
        self.cols.div_ceil(LANES) * LANES
    }

    /// Row length of the planes this plan reads: the padding on both sides, and on the
    /// right room for the last block of columns.
    pub fn width(&self) -> usize {
        plane_width(self.cols, self.pad)
    }

    /// Values of such a plane.
    pub fn plane_len(&self) -> usize {
        self.width() * (self.rows + 2 * self.pad)
    }
}

/// Row length of a plane for images `cols` wide padded by `pad`: room on the right for
/// the last block of columns.
pub fn plane_width(cols: usize, pad: usize) -> usize {
    cols.div_ceil(LANES) * LANES + 2 * pad
}

/// `floor(k + off) - k` and `ceil(k + off) - k` for every `k < n`, with skimage's
/// fractions `(k + off) - floor(k + off)`; None when the integer parts vary with `k`.
fn fractions(off: f64, n: usize) -> Option<(isize, isize, Vec<f64>)> {
    let (lo, hi) = (off.floor() as isize, off.ceil() as isize);
    let mut frac = Vec::with_capacity(n);
    for k in 0..n {
        let f = k as f64 + off;
        if f.floor() as isize - k as isize != lo || f.ceil() as isize - k as isize != hi {
            return None;
        }
        frac.push(f - f.floor());
    }
    Some((lo, hi, frac))
}

/// Whether skimage's interpolation of four equal pixels `v` is `>= v` for every `v` in
/// 1..=255 and every row and column weight (`dr`, `dc`): then a neighbour whose samples all
/// equal the centre has its bit set, as the float32 pass (difference exactly 0) says.
/// Such flat neighbours are most of the comparisons near zero on CT slices (59 %): the
/// AVX-512 block does not flag them for the float64 re-check. False when the weights
/// take too many distinct values to check cheaply (they are then re-checked).
fn flat_sets(dr: &[f64], dc: &[f64]) -> bool {
    let distinct = |v: &[f64]| {
        let mut bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        bits.into_iter().map(f64::from_bits).collect::<Vec<_>>()
    };
    let (dr, dc) = (distinct(dr), distinct(dc));
    if dr.len() * dc.len() > 4096 {
        return false;
    }
    (1..=255).all(|v| {
        let v = v as f64;
        dr.iter().all(|&dr| {
            dc.iter().all(|&dc| {
                // skimage's bilinear_interpolation with all four pixels v, operation for operation.
                let t = (1.0 - dc) * v + dc * v;
                (1.0 - dr) * t + dr * t - v >= 0.0
            })
        })
    })
}

/// The single value all of `v` are close to, or None.
fn nominal(v: &[f64]) -> Option<f64> {
    let first = *v.first()?;
    v.iter().all(|x| (x - first).abs() <= WEIGHT_SPREAD).then_some(first)
}

impl Lbp {
    /// Zero padding around images of `rows x cols` that covers every neighbour landing inside
    /// them (both paths plan with it).
    pub fn fast_pad(&self, rows: usize, cols: usize) -> usize {
        let inside = |off: f64, side: usize| off.abs() < side as f64;
        let reach = self
            .rp
            .iter()
            .zip(&self.cp)
            .filter(|(&r, &c)| inside(r, rows) && inside(c, cols))
            .map(|(r, c)| r.abs().max(c.abs()).ceil() as usize)
            .max()
            .unwrap_or(0);
        reach + 1
    }

    /// A plan for uint8 images of `rows x cols` in planes padded by `pad` (at least
    /// [`Lbp::fast_pad`]); None when this operator needs the exact path (`var`, more
    /// than [`FAST_MAX_POINTS`] points, offsets not rounded like skimage's).
    pub fn fast_plan(&self, rows: usize, cols: usize, pad: usize) -> Result<Option<FastPlan>> {
        if rows == 0 || cols == 0 {
            return value_err!("The parameter `image` cannot be an empty array");
        }
        if rows > super::MAX_SIDE || cols > super::MAX_SIDE {
            return value_err!("image sides must be at most {} pixels, got {rows} x {cols}", super::MAX_SIDE);
        }
        if self.method == Method::Var || self.p > FAST_MAX_POINTS || pad < self.fast_pad(rows, cols) {
            return Ok(None);
        }
        let mut samples = Vec::with_capacity(self.p);
        for (&rp, &cp) in self.rp.iter().zip(&self.cp) {
            if !(rp.abs() < rows as f64 && cp.abs() < cols as f64) {
                samples.push(Sample::Zero);
                continue;
            }
            let (Some((top, bottom, dr)), Some((left, right, dc))) = (fractions(rp, rows), fractions(cp, cols)) else {
                return Ok(None);
            };
            if dr.iter().all(|&d| d == 0.0) && dc.iter().all(|&d| d == 0.0) {
                // skimage: (1 - 0) * a + 0 * b == a, so the pixel itself.
                samples.push(Sample::Pixel { dr: top, dc: left });
                continue;
            }
            let (Some(wr), Some(wc)) = (nominal(&dr), nominal(&dc)) else { return Ok(None) };
            let flat_sets = flat_sets(&dr, &dc);
            samples.push(Sample::Bilinear { top, bottom, left, right, wr: wr as f32, wc: wc as f32, dr, dc, flat_sets });
        }
        let width = plane_width(cols, pad) as isize;
        let (mut zero_bits, mut pixels, mut quads) = (0u32, Vec::new(), Vec::new());
        for (i, s) in samples.iter().enumerate() {
            let bit = 1u32 << i;
            match s {
                Sample::Zero => zero_bits |= bit,
                Sample::Pixel { dr, dc } => pixels.push((dr * width + dc, bit)),
                Sample::Bilinear { top, bottom, left, right, wr, wc, flat_sets, .. } => quads.push(Quad {
                    at: [top * width + left, top * width + right, bottom * width + left, bottom * width + right],
                    wr: *wr,
                    wc: *wc,
                    bit,
                    flat_sets: if *flat_sets { u32::MAX } else { 0 },
                }),
            }
        }
        let quad_bits = quads.iter().fold(0, |acc, q| acc | q.bit);
        let all_flat_sets = quads.iter().all(|q| q.flat_sets != 0);
        Ok(Some(FastPlan { rows, cols, pad, samples, zero_bits, pixels, quads, quad_bits, all_flat_sets }))
    }

    /// Code counts of one padded uint8 image (`plane`: [`FastPlan::plane_len`] float32
    /// values, rows of [`FastPlan::width`], the image at `(pad, pad)`, zeros around it) added to `counts` (`4 * n_bins`, four
    /// interleaved counters per code).
    pub fn count_fast(&self, plan: &FastPlan, plane: &[f32], counts: &mut [u32], scratch: &mut Vec<u32>) -> Result<()> {
        if plane.len() != plan.plane_len() || plan.samples.len() != self.p {
            return value_err!("plane or plan made for another image size or operator");
        }
        let n_bins = self.method.n_codes(self.p).unwrap_or(0);
        if counts.len() != 4 * n_bins {
            return value_err!("counts hold {} values, expected {}", counts.len(), 4 * n_bins);
        }
        scratch.clear();
        scratch.resize(3 * plan.padded_cols(), 0);
        match crate::simd::level() {
            // SAFETY (both): simd::level() only reports instruction sets this CPU has.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { self.count_avx512(plan, plane, counts, scratch) },
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { self.count_avx2(plan, plane, counts, scratch) },
            _ => self.count_rows(plan, plane, counts, scratch, |here, m, nr| block(plan, plane, here, m, nr), flagged_columns_portable),
        }
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,fma,popcnt")]
    unsafe fn count_avx512(&self, plan: &FastPlan, plane: &[f32], counts: &mut [u32], scratch: &mut [u32]) {
        // SAFETY: this function runs only on CPUs with AVX-512 (see count_fast), which all
        // have FMA (simd::Level::Avx512 assumes it, as the GLCM kernels do).
        // SAFETY (flagged_columns): `count_rows` hands it slices of equal length.
        self.count_rows(
            plan,
            plane,
            counts,
            scratch,
            |here, m, nr| unsafe { super::fast_avx512::block(plan, plane, here, m, nr) },
            |near, flagged| unsafe { super::fast_avx512::flagged_columns(near, flagged) },
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn count_avx2(&self, plan: &FastPlan, plane: &[f32], counts: &mut [u32], scratch: &mut [u32]) {
        self.count_rows(plan, plane, counts, scratch, |here, m, nr| block(plan, plane, here, m, nr), flagged_columns_portable)
    }

    #[inline(always)]
    fn count_rows(
        &self,
        plan: &FastPlan,
        plane: &[f32],
        counts: &mut [u32],
        scratch: &mut [u32],
        block: impl Fn(usize, &mut [u32], &mut [u32]),
        flagged_columns: impl Fn(&[u32], &mut [u32]) -> usize,
    ) {
        let (cols, pad) = (plan.cols, plan.pad);
        let width = plan.width();
        let (masks, rest) = scratch.split_at_mut(plan.padded_cols());
        let (near, flagged) = rest.split_at_mut(plan.padded_cols());
        for r in 0..plan.rows {
            // Blocks of LANES columns; the plane's right margin makes the reads of the
            // last block valid (their bits beyond `cols` are dropped).
            for x in (0..cols).step_by(LANES) {
                block((r + pad) * width + pad + x, &mut masks[x..x + LANES], &mut near[x..x + LANES]);
            }
            let n = flagged_columns(&near[..cols], &mut flagged[..cols]);
            self.settle_near(plan, plane, r, &mut masks[..cols], &near[..cols], &flagged[..n]);
            self.tally(&mut masks[..cols], counts);
        }
    }

    /// Redo the comparisons flagged in `near` with skimage's float64 arithmetic
    /// (`flagged`: the columns with a flag, in order).
    #[inline(never)]
    fn settle_near(&self, plan: &FastPlan, plane: &[f32], r: usize, masks: &mut [u32], near: &[u32], flagged: &[u32]) {
        let pad = plan.pad;
        let width = plan.width();
        let px = |dr: isize, c: usize, dc: isize| {
            plane[((r + pad) as isize + dr) as usize * width + ((c + pad) as isize + dc) as usize] as f64
        };
        for &c in flagged {
            let c = c as usize;
            let mut pending = near[c];
            while pending != 0 {
                let i = pending.trailing_zeros() as usize;
                pending &= pending - 1;
                let Sample::Bilinear { top, bottom, left, right, dr, dc, .. } = &plan.samples[i] else { continue };
                let (dr, dc) = (dr[r], dc[c]);
                // skimage's bilinear_interpolation, operation for operation.
                let t = (1.0 - dc) * px(*top, c, *left) + dc * px(*top, c, *right);
                let b = (1.0 - dc) * px(*bottom, c, *left) + dc * px(*bottom, c, *right);
                let value = (1.0 - dr) * t + dr * b;
                let bit = 1u32 << i;
                if value - px(0, c, 0) >= 0.0 {
                    masks[c] |= bit;
                } else {
                    masks[c] &= !bit;
                }
            }
        }
    }

    /// Add the codes of one row of patterns to the interleaved counters.
    #[inline(always)]
    fn tally(&self, masks: &mut [u32], counts: &mut [u32]) {
        let p = self.p;
        // Codes first, branch-free (so the loop vectorises), then the counting.
        match (&self.lut, self.method) {
            (Some(lut), _) => masks.iter_mut().for_each(|m| *m = lut[*m as usize]),
            (None, Method::Uniform) => {
                // skimage counts changes between consecutive neighbours, not around the circle.
                let inner = if p >= 32 { u32::MAX >> 1 } else { (1u32 << (p - 1)) - 1 };
                let non_uniform = p as u32 + 1;
                for m in masks.iter_mut() {
                    let changes = ((*m ^ (*m >> 1)) & inner).count_ones();
                    let ones = m.count_ones();
                    *m = if changes <= 2 { ones } else { non_uniform };
                }
            }
            (None, method) => masks.iter_mut().for_each(|m| *m = code(*m as u64, p, method)),
        }
        for (c, &k) in masks.iter().enumerate() {
            counts[4 * k as usize + (c & 3)] += 1;
        }
    }
}

/// The columns with a flag in `near`, in order, into the front of `flagged` (as long as
/// `near`); returns their number. [`Lbp::count_fast`] picks the variant once per call; this
/// dispatch is for the tests.
#[cfg(test)]
pub(super) fn flagged_columns(near: &[u32], flagged: &mut [u32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() == Level::Avx512 {
        // SAFETY: simd::level() only reports instruction sets this CPU has.
        return unsafe { super::fast_avx512::flagged_columns(near, flagged) };
    }
    flagged_columns_portable(near, flagged)
}

/// The portable [`flagged_columns`]: branch-free (a branch per column mispredicts on
/// scattered flags); the last slot is written at most once past the count.
#[inline(always)]
pub(super) fn flagged_columns_portable(near: &[u32], flagged: &mut [u32]) -> usize {
    flagged_columns_from(near, flagged, 0, 0)
}

/// [`flagged_columns_portable`] from column `c` on, `n` columns already found.
#[inline(always)]
pub(super) fn flagged_columns_from(near: &[u32], flagged: &mut [u32], c: usize, mut n: usize) -> usize {
    for (c, &flags) in near.iter().enumerate().skip(c) {
        if let Some(slot) = flagged.get_mut(n) {
            *slot = c as u32;
        }
        n += (flags != 0) as usize;
    }
    n
}

/// Patterns (`m`) and near-zero flags (`nr`) of the LANES pixels from plane index `here`.
#[inline(always)]
fn block(plan: &FastPlan, plane: &[f32], here: usize, m: &mut [u32], nr: &mut [u32]) {
    let center = &plane[here..][..LANES];
    let (m, nr) = (&mut m[..LANES], &mut nr[..LANES]);
    for l in 0..LANES {
        m[l] = if center[l] == 0.0 { plan.zero_bits } else { 0 };
        nr[l] = 0;
    }
    for &(off, bit) in &plan.pixels {
        let src = &plane[(here as isize + off) as usize..][..LANES];
        for l in 0..LANES {
            m[l] |= if src[l] >= center[l] { bit } else { 0 };
        }
    }
    for q in &plan.quads {
        let tap = |k: usize| &plane[(here as isize + q.at[k]) as usize..][..LANES];
        let (tl, tr, bl, br) = (tap(0), tap(1), tap(2), tap(3));
        for l in 0..LANES {
            let t = tl[l] + q.wc * (tr[l] - tl[l]);
            let b = bl[l] + q.wc * (br[l] - bl[l]);
            let d = t + q.wr * (b - t) - center[l];
            let zero = center[l] == 0.0;
            m[l] |= if d >= 0.0 || zero { q.bit } else { 0 };
            nr[l] |= if d.abs() <= NEAR && !zero { q.bit } else { 0 };
        }
    }
}
