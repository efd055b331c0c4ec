//! The direct 2-D convolution (anisotropic kernels, float32 kernels).
use super::buffers::Padded;
use super::Gabor;
use crate::simd::F64s;

/// Direct 2-D convolution of a padded image into two `rows x w` planes.
#[inline(always)]
pub(crate) fn direct<S: F64s>(
    pad: &Padded,
    padded: &[f64],
    rows: usize,
    g: &Gabor,
    taps: &[(usize, usize, f64, f64)],
    out_re: &mut [f64],
    out_im: &mut [f64],
) {
    let (hx, hy, w, l) = (g.half_x, g.half_y, pad.w, S::LANES);
    out_re[..rows * w].fill(0.0);
    out_im[..rows * w].fill(0.0);
    for y in 0..rows {
        for &(u, v, a, b) in taps {
            // Convolution: weight (u, v) meets input (y + hy - (u - hy), x + hx - (v - hx)).
            let r = pad.py - hy + y + 2 * hy - u;
            let c = pad.px - hx + 2 * hx - v;
            let (a, b) = (S::splat(a), S::splat(b));
            let src = padded[r * pad.stride + c..r * pad.stride + c + w].as_ptr();
            let (o_re, o_im) = (
                out_re[y * w..(y + 1) * w].as_mut_ptr(),
                out_im[y * w..(y + 1) * w].as_mut_ptr(),
            );
            for x in (0..w).step_by(l) {
                // SAFETY: the three slices above have w values, x + l <= w.
                unsafe {
                    let p = S::load(src.add(x));
                    a.mul_add(p, S::load(o_re.add(x))).store(o_re.add(x));
                    b.mul_add(p, S::load(o_im.add(x))).store(o_im.add(x));
                }
            }
        }
    }
}
