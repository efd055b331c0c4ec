//! Block normalisation in skimage's output layout.
use super::{BlockNorm, HogParams, HogShape};

/// skimage's `_hog_normalize_block` over every block, written in its output layout.
///
/// A block's L1 / L2 sum is the sum of its cells' sums, computed once per cell rather
/// than once per block; divisions become one reciprocal per block. Both change only the
/// last bits (numpy itself sums pairwise).
#[inline(always)]
pub(crate) fn normalize_blocks(hist: &[f64], shape: HogShape, p: &HogParams, out: &mut [f64]) {
    const EPS: f64 = 1e-5;
    let n = p.orientations;
    let (br, bc) = p.block;
    let ncc = shape.n_cells.1;
    let block_len = br * bc * n;
    let cell_sums: Vec<f64> = match p.norm {
        BlockNorm::L1 | BlockNorm::L1Sqrt => hist.chunks_exact(n).map(|h| sum_of(h, f64::abs)).collect(),
        BlockNorm::L2 | BlockNorm::L2Hys => hist.chunks_exact(n).map(|h| sum_of(h, |v| v * v)).collect(),
    };
    let mut at = 0;
    for r in 0..shape.n_blocks.0 {
        for c in 0..shape.n_blocks.1 {
            let dst = &mut out[at..at + block_len];
            at += block_len;
            let mut total = 0.0;
            for i in 0..br {
                let src = (r + i) * ncc * n + c * n;
                dst[i * bc * n..(i + 1) * bc * n].copy_from_slice(&hist[src..src + bc * n]);
                total += cell_sums[(r + i) * ncc + c..(r + i) * ncc + c + bc].iter().sum::<f64>();
            }
            match p.norm {
                BlockNorm::L1 => {
                    let inv = 1.0 / (total + EPS);
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
                BlockNorm::L1Sqrt => {
                    let inv = 1.0 / (total + EPS);
                    dst.iter_mut().for_each(|v| *v = (*v * inv).sqrt());
                }
                BlockNorm::L2 => {
                    let inv = 1.0 / (total + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
                BlockNorm::L2Hys => {
                    let inv = 1.0 / (total + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v = (*v * inv).min(0.2));
                    let inv = 1.0 / (sum_of(dst, |v| v * v) + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
            }
        }
    }
}

/// `sum(f(v))` with four independent running totals (no serial dependency chain).
#[inline(always)]
pub(crate) fn sum_of(values: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = values.chunks_exact(4);
    for ch in &mut chunks {
        for j in 0..4 {
            acc[j] += f(ch[j]);
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}
