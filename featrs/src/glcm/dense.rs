//! `graycoprops` of a dense matrix, scikit-image's float formulas term by term.
use super::{offset_sums, Prop, UNSURE_STD, ZERO_STD};
use crate::error::Result;
use crate::value_err;

/// What a dense matrix may hold (uint32 counts or float64), read as f64.
pub trait Value: Copy + Into<f64> {}
impl<T: Copy + Into<f64>> Value for T {}

crate::simd::multiversion! {
    /// `graycoprops(P, prop)` for a dense C-ordered `levels x levels x n_offsets` matrix.
    ///
    /// Follows scikit-image's float formulas (normalize, then weighted sums over `i, j`).
    /// `unsure[o]` is set to 1 for correlation cells whose standard deviation is too close
    /// to scikit-image's zero threshold for this arithmetic to decide like numpy would.
    /// Compiled per instruction set, a cell's offsets are one vector; Rust never fuses a
    /// multiply and an add, so every variant rounds the same way.
    pub fn props_dense<T: Value>(p: &[T], levels: usize, n_offsets: usize, prop: Prop, out: &mut [f64],
                                 unsure: &mut [u8]) -> Result<()> {
        avx512("avx512f") => props_for_offsets,
        avx2("avx2") => props_for_offsets,
        _ => props_for_offsets,
    }
}

/// [`props_with`] compiled for the offsets' count when it is 4 or 16: the zero test of a
/// cell and its per-offset arithmetic then run without a loop (see `visit_normalized`).
#[inline(always)]
fn props_for_offsets<T: Value>(
    p: &[T],
    levels: usize,
    n_offsets: usize,
    prop: Prop,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    match n_offsets {
        4 => props_with::<T, 4>(p, levels, n_offsets, prop, out, unsure),
        16 => props_with::<T, 16>(p, levels, n_offsets, prop, out, unsure),
        _ => props_with::<T, 0>(p, levels, n_offsets, prop, out, unsure),
    }
}

/// [`props_dense`] for `N` offsets (`N` = 0: any count, `n_offsets`).
#[inline(always)]
fn props_with<T: Value, const N: usize>(
    p: &[T],
    levels: usize,
    n_offsets: usize,
    prop: Prop,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    let n_off = if N == 0 { n_offsets } else { N };
    if levels == 0 || n_off == 0 {
        return value_err!("P must not be empty");
    }
    match levels
        .checked_mul(levels)
        .and_then(|l2| l2.checked_mul(n_off))
    {
        Some(n) if n == p.len() => {}
        _ => return value_err!("P has {} values, expected {levels}^2 x {n_off}", p.len()),
    }
    if out.len() != n_off || unsure.len() != n_off {
        return value_err!("outputs must have {n_off} values");
    }
    let mut sums = offset_sums(p, n_off, |v| v.into());
    for s in sums.iter_mut() {
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    // A finite sum means every value is finite; then a zero value adds an exact zero to
    // every sum below (its weight is finite, and a sum that starts at +0 is never -0), so
    // skipping an all-zero cell, or adding a zero term, changes no bit. Real slices fill
    // few of the 65,536 cells of a 256-level GLCM, and a division per cell was most of
    // graycoprops' time.
    let sparse = sums.iter().all(|s| s.is_finite());
    unsure.fill(0);
    let mut acc = vec![0.0f64; n_off];
    match prop {
        Prop::Contrast | Prop::Dissimilarity | Prop::Homogeneity => {
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |i, j, q| {
                let d = i as f64 - j as f64;
                let w = match prop {
                    Prop::Contrast => d * d,
                    Prop::Dissimilarity => d.abs(),
                    _ => 1.0 / (1.0 + d * d),
                };
                for (a, &v) in acc.iter_mut().zip(q) {
                    *a += v * w;
                }
            });
            out.copy_from_slice(&acc);
        }
        Prop::Asm | Prop::Energy => {
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |_, _, q| {
                for (a, &v) in acc.iter_mut().zip(q) {
                    *a += v * v;
                }
            });
            for (r, a) in out.iter_mut().zip(&acc) {
                *r = if prop == Prop::Energy { a.sqrt() } else { *a };
            }
        }
        Prop::Entropy => {
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |_, _, q| {
                for (a, &v) in acc.iter_mut().zip(q) {
                    // scikit-image's 0 * log(0) term is dropped (it masks it out).
                    if v != 0.0 {
                        *a += v * -v.ln();
                    }
                }
            });
            out.copy_from_slice(&acc);
        }
        Prop::Mean | Prop::Variance | Prop::Std => {
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |i, _, q| {
                for (a, &v) in acc.iter_mut().zip(q) {
                    *a += i as f64 * v;
                }
            });
            if prop == Prop::Mean {
                out.copy_from_slice(&acc);
            } else {
                let mean = acc.clone();
                acc.fill(0.0);
                let sparse = sparse && mean.iter().all(|m| m.is_finite());
                visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |i, _, q| {
                    for ((a, &v), &m) in acc.iter_mut().zip(q).zip(&mean) {
                        let d = i as f64 - m;
                        *a += v * (d * d);
                    }
                });
                for (r, a) in out.iter_mut().zip(&acc) {
                    *r = if prop == Prop::Std { a.sqrt() } else { *a };
                }
            }
        }
        Prop::Correlation => {
            let mut mean_j = vec![0.0f64; n_off];
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |i, j, q| {
                for ((a, b), &v) in acc.iter_mut().zip(mean_j.iter_mut()).zip(q) {
                    *a += i as f64 * v;
                    *b += j as f64 * v;
                }
            });
            let mean_i = acc;
            let sparse = sparse && mean_i.iter().chain(&mean_j).all(|m| m.is_finite());
            let mut var_i = vec![0.0f64; n_off];
            let mut var_j = vec![0.0f64; n_off];
            let mut cov = vec![0.0f64; n_off];
            visit_normalized::<T, _, N>(p, levels, &sums, sparse, &mut |i, j, q| {
                for o in 0..q.len() {
                    let di = i as f64 - mean_i[o];
                    let dj = j as f64 - mean_j[o];
                    var_i[o] += q[o] * (di * di);
                    var_j[o] += q[o] * (dj * dj);
                    cov[o] += q[o] * (di * dj);
                }
            });
            for o in 0..n_off {
                let (si, sj) = (var_i[o].sqrt(), var_j[o].sqrt());
                if si < UNSURE_STD || sj < UNSURE_STD {
                    unsure[o] = 1;
                }
                out[o] = if si < ZERO_STD || sj < ZERO_STD {
                    1.0
                } else {
                    cov[o] / (si * sj)
                };
            }
        }
    }
    Ok(())
}

/// Call `f(i, j, q)` with `q[o] = P[i, j, o] / sums[o]` for every cell, in C order
/// (numpy's order); with `skip_zeros`, only for the cells that are not all zero.
#[inline(always)]
fn visit_normalized<T: Value, F: FnMut(usize, usize, &[f64]) + ?Sized, const N: usize>(
    p: &[T],
    levels: usize,
    sums: &[f64],
    skip_zeros: bool,
    f: &mut F,
) {
    let n_off = if N == 0 { sums.len() } else { N };
    // A fixed-size buffer for 4 and 16 offsets: the per-offset loops become vectors.
    let mut fixed = [0.0f64; 16];
    let mut wide = Vec::new();
    let q: &mut [f64] = if N == 0 {
        wide.resize(n_off, 0.0);
        &mut wide
    } else {
        &mut fixed[..N]
    };
    for (i, row) in p.chunks_exact(levels * n_off).enumerate() {
        for (j, cell) in row.chunks_exact(n_off).enumerate() {
            // All zero (either sign) without a branch per value: the bits but the sign.
            if skip_zeros && cell.iter().fold(0u64, |any, &v| any | (v.into().to_bits() << 1)) == 0 {
                continue;
            }
            for ((q, &v), &s) in q.iter_mut().zip(cell).zip(sums) {
                *q = v.into() / s;
            }
            f(i, j, q);
        }
    }
}
