//! The float32 pass of [`super::fast`] in AVX-512 registers: one block of 16 columns with
//! every neighbour's bit accumulated in a register (auto-vectorised code keeps the
//! block's patterns in memory, behind masked stores).
//!
//! Two differences from the portable block, neither changing the patterns left after
//! the float64 re-check (which decides every flagged comparison exactly):
//! - the interpolation uses FMA: one rounding instead of two per step, so the float32
//!   value is no farther from skimage's than the bound [`NEAR`] rests on;
//! - a neighbour whose four samples all equal the centre (flat regions: 59 % of the
//!   near-zero comparisons on CT slices) is not flagged when its quad says skimage sets
//!   the bit there (`Quad::flat_sets`): the float32 difference is exactly +0, so the bit
//!   is already set. Flat is told branch-free from the three differences of the
//!   interpolation (see `quads`).
#![cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::fast::{flagged_columns_from, LANES, NEAR};
use super::fast_plan::FastPlan;

/// Patterns and near-zero flags of the 16 pixels from plane index `here`, into `m`, `nr`.
///
/// # Safety
/// The CPU has AVX-512 F; every tap of `plan` from `here` reads 16 values inside `plane`;
/// `m` and `nr` hold at least 16 values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,fma")]
pub(super) unsafe fn block(plan: &FastPlan, plane: &[f32], here: usize, m: &mut [u32], nr: &mut [u32]) {
    debug_assert!(m.len() >= LANES && nr.len() >= LANES && LANES == 16);
    if plan.all_flat_sets {
        quads::<true>(plan, plane, here, m, nr)
    } else {
        quads::<false>(plan, plane, here, m, nr)
    }
}

/// [`block`], with `ALL_FLAT` when every quad may skip flat samples (one test fewer).
///
/// # Safety
/// As [`block`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,fma")]
unsafe fn quads<const ALL_FLAT: bool>(plan: &FastPlan, plane: &[f32], here: usize, m: &mut [u32], nr: &mut [u32]) {
    let base = plane.as_ptr().add(here);
    let center = _mm512_loadu_ps(base);
    let zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(center, _mm512_setzero_ps());
    // Where the centre is 0 every bit is set (all values are >= 0): set them all here,
    // so the loops below need not treat those lanes apart.
    let mut bits = _mm512_maskz_mov_epi32(zero, _mm512_set1_epi32((plan.zero_bits | plan.quad_bits) as i32));
    let mut near = _mm512_setzero_si512();
    for &(off, bit) in &plan.pixels {
        let v = _mm512_loadu_ps(base.offset(off));
        let ge = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, center);
        bits = _mm512_mask_or_epi32(bits, ge, bits, _mm512_set1_epi32(bit as i32));
    }
    let eps = _mm512_set1_ps(NEAR);
    for q in &plan.quads {
        let (tl, tr) = (_mm512_loadu_ps(base.offset(q.at[0])), _mm512_loadu_ps(base.offset(q.at[1])));
        let (bl, br) = (_mm512_loadu_ps(base.offset(q.at[2])), _mm512_loadu_ps(base.offset(q.at[3])));
        let (wc, wr) = (_mm512_set1_ps(q.wc), _mm512_set1_ps(q.wr));
        let (top, bottom) = (_mm512_sub_ps(tr, tl), _mm512_sub_ps(br, bl));
        let t = _mm512_fmadd_ps(wc, top, tl);
        let b = _mm512_fmadd_ps(wc, bottom, bl);
        let vertical = _mm512_sub_ps(b, t);
        let d = _mm512_sub_ps(_mm512_fmadd_ps(wr, vertical, t), center);
        let bit = _mm512_set1_epi32(q.bit as i32);
        let ge = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d, _mm512_setzero_ps());
        bits = _mm512_mask_or_epi32(bits, ge, bits, bit);
        // Flat: the three differences are +0 (x - x is +0: all bits clear). Among the
        // close lanes that is all it takes: then d = tl - centre, an integer, so 0.
        let any = _mm512_ternarylogic_epi32::<0xFE>(_mm512_castps_si512(top), _mm512_castps_si512(bottom), _mm512_castps_si512(vertical));
        let any = if ALL_FLAT {
            any
        } else {
            // A quad that cannot skip flat samples (`flat_sets` 0) counts as never flat.
            _mm512_or_si512(any, _mm512_set1_epi32(!q.flat_sets as i32))
        };
        let close = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_abs_ps(d), eps);
        let close = _mm512_mask_test_epi32_mask(close, any, any);
        near = _mm512_mask_or_epi32(near, close, near, bit);
    }
    // Centre 0 needs no re-check (see the module docs of `fast`).
    let near = _mm512_maskz_mov_epi32(!zero, near);
    _mm512_storeu_si512(m.as_mut_ptr() as *mut _, bits);
    _mm512_storeu_si512(nr.as_mut_ptr() as *mut _, near);
}

/// [`super::fast::flagged_columns`] 16 columns at a time: the flagged ones' numbers are
/// compressed into a register and stored whole (the slots past the count are overwritten
/// later or never read). The scalar loop it replaces took about 40 % of the float64
/// re-check's time at 512 px (perf), scanning every column of every row.
///
/// # Safety
/// The CPU has AVX-512 F; `flagged` is at least as long as `near`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn flagged_columns(near: &[u32], flagged: &mut [u32]) -> usize {
    assert!(flagged.len() >= near.len());
    let (mut n, mut c) = (0usize, 0usize);
    let mut columns = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_set1_epi32(16);
    while c + 16 <= near.len() {
        let flags = _mm512_loadu_si512(near.as_ptr().add(c) as *const _);
        let any = _mm512_test_epi32_mask(flags, flags);
        // n <= c, so the 16 slots from n end within flagged[..c + 16].
        _mm512_storeu_si512(flagged.as_mut_ptr().add(n) as *mut _, _mm512_maskz_compress_epi32(any, columns));
        n += any.count_ones() as usize;
        columns = _mm512_add_epi32(columns, step);
        c += 16;
    }
    flagged_columns_from(near, flagged, c, n)
}
