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
use super::fast_plan::{FastPlan, Sample};
use super::{code, Lbp, Method};
use crate::error::Result;
use crate::simd::Level;
use crate::value_err;

/// Comparisons closer than this to zero are redone in float64 (see the module docs).
pub(super) const NEAR: f32 = 1.0 / 512.0;
/// Columns evaluated together (one AVX-512 register of f32).
pub(super) const LANES: usize = 16;
/// Largest P of the fast path (patterns are u32 bit masks).
pub const FAST_MAX_POINTS: usize = 32;

impl Lbp {
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
