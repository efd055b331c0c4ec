//! `graycoprops` of a dense matrix, scikit-image's float formulas term by term.
use super::{Prop, UNSURE_STD, ZERO_STD};
use crate::error::Result;
use crate::value_err;

/// `graycoprops(P, prop)` for a dense C-ordered `levels x levels x n_offsets` matrix.
///
/// Follows scikit-image's float formulas (normalize, then weighted sums over `i, j`).
/// `unsure[o]` is set to 1 for correlation cells whose standard deviation is too close
/// to scikit-image's zero threshold for this arithmetic to decide like numpy would.
pub fn props_dense<T: Copy + Into<f64>>(
    p: &[T],
    levels: usize,
    n_offsets: usize,
    prop: Prop,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    let n_off = n_offsets;
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
    let mut sums = vec![0.0f64; n_off];
    for cell in p.chunks_exact(n_off) {
        for (s, &v) in sums.iter_mut().zip(cell) {
            *s += v.into();
        }
    }
    for s in sums.iter_mut() {
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    unsure.fill(0);
    let mut acc = vec![0.0f64; n_off];
    match prop {
        Prop::Contrast | Prop::Dissimilarity | Prop::Homogeneity => {
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                let d = i as f64 - j as f64;
                let w = match prop {
                    Prop::Contrast => d * d,
                    Prop::Dissimilarity => d.abs(),
                    _ => 1.0 / (1.0 + d * d),
                };
                acc[o] += v * w;
            });
            out.copy_from_slice(&acc);
        }
        Prop::Asm | Prop::Energy => {
            visit_normalized(p, levels, &sums, &mut |_, _, o, v| acc[o] += v * v);
            for (r, a) in out.iter_mut().zip(&acc) {
                *r = if prop == Prop::Energy { a.sqrt() } else { *a };
            }
        }
        Prop::Entropy => {
            visit_normalized(p, levels, &sums, &mut |_, _, o, v| {
                if v != 0.0 {
                    acc[o] += v * -v.ln();
                }
            });
            out.copy_from_slice(&acc);
        }
        Prop::Mean | Prop::Variance | Prop::Std => {
            visit_normalized(p, levels, &sums, &mut |i, _, o, v| acc[o] += i as f64 * v);
            if prop == Prop::Mean {
                out.copy_from_slice(&acc);
            } else {
                let mean = acc.clone();
                acc.fill(0.0);
                visit_normalized(p, levels, &sums, &mut |i, _, o, v| {
                    let d = i as f64 - mean[o];
                    acc[o] += v * (d * d);
                });
                for (r, a) in out.iter_mut().zip(&acc) {
                    *r = if prop == Prop::Std { a.sqrt() } else { *a };
                }
            }
        }
        Prop::Correlation => {
            let mut mean_j = vec![0.0f64; n_off];
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                acc[o] += i as f64 * v;
                mean_j[o] += j as f64 * v;
            });
            let mean_i = acc;
            let mut var_i = vec![0.0f64; n_off];
            let mut var_j = vec![0.0f64; n_off];
            let mut cov = vec![0.0f64; n_off];
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                let di = i as f64 - mean_i[o];
                let dj = j as f64 - mean_j[o];
                var_i[o] += v * (di * di);
                var_j[o] += v * (dj * dj);
                cov[o] += v * (di * dj);
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

/// Call `f(i, j, o, P[i, j, o] / sums[o])` for every cell, in C order (numpy's order).
#[inline(always)]
fn visit_normalized<T: Copy + Into<f64>, F: FnMut(usize, usize, usize, f64) + ?Sized>(
    p: &[T],
    levels: usize,
    sums: &[f64],
    f: &mut F,
) {
    let n_off = sums.len();
    for i in 0..levels {
        for j in 0..levels {
            let base = (i * levels + j) * n_off;
            for (o, &s) in sums.iter().enumerate() {
                f(i, j, o, p[base + o].into() / s);
            }
        }
    }
}
