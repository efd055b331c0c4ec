//! The float32 pass of [`super::fast`] in AVX-512 registers: one block of 16 columns with
//! every neighbour's bit accumulated in a register (auto-vectorised code keeps the
//! block's patterns in memory, behind masked stores). Same comparisons as the portable
//! block: the patterns it leaves are identical.
#![cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::fast::{FastPlan, LANES, NEAR};

/// Patterns and near-zero flags of the 16 pixels from plane index `here`, into `m`, `nr`.
///
/// # Safety
/// The CPU has AVX-512 F; every tap of `plan` from `here` reads 16 values inside `plane`;
/// `m` and `nr` hold at least 16 values.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn block(plan: &FastPlan, plane: &[f32], here: usize, m: &mut [u32], nr: &mut [u32]) {
    debug_assert!(m.len() >= LANES && nr.len() >= LANES && LANES == 16);
    let base = plane.as_ptr().add(here);
    let center = _mm512_loadu_ps(base);
    let zero = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(center, _mm512_setzero_ps());
    let mut bits = _mm512_maskz_mov_epi32(zero, _mm512_set1_epi32(plan.zero_bits as i32));
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
        let t = _mm512_add_ps(tl, _mm512_mul_ps(wc, _mm512_sub_ps(tr, tl)));
        let b = _mm512_add_ps(bl, _mm512_mul_ps(wc, _mm512_sub_ps(br, bl)));
        let d = _mm512_sub_ps(_mm512_add_ps(t, _mm512_mul_ps(wr, _mm512_sub_ps(b, t))), center);
        let bit = _mm512_set1_epi32(q.bit as i32);
        let ge = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(d, _mm512_setzero_ps()) | zero;
        bits = _mm512_mask_or_epi32(bits, ge, bits, bit);
        let close = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(_mm512_abs_ps(d), eps) & !zero;
        near = _mm512_mask_or_epi32(near, close, near, bit);
    }
    _mm512_storeu_si512(m.as_mut_ptr() as *mut _, bits);
    _mm512_storeu_si512(nr.as_mut_ptr() as *mut _, near);
}
