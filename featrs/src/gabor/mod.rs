//! Gabor filtering with scikit-image's numbers: `skimage.filters.gabor_kernel` and
//! `skimage.filters.gabor` (= `scipy.ndimage.convolve` of the image with the kernel's
//! real and imaginary parts, with scipy's boundary modes).
//!
//! With `sigma_x == sigma_y` the kernel is an isotropic Gaussian times a plane wave,
//! `C G(x) G(y) e^{i(wx x + wy y + offset)}`, which splits exactly into two 1-D passes:
//! a complex row pass of the (real) image, then, after demodulating rows by
//! `e^{-i wy row}`, a real Gaussian column pass; both use the kernels' symmetry to
//! halve the multiplications. Other kernels (and float32 images, whose kernel
//! scikit-image rounds to complex64) use a direct 2-D convolution.
use std::f64::consts::PI;

mod bank;
mod buffers;
mod direct;
mod filter;
mod plan;
mod separable;
#[cfg(test)]
mod tests;

pub use bank::{bank_stats, BankPlan};
pub use buffers::GaborScratch;
use buffers::{reserve, Padded, STRIP};
pub use filter::filter;
pub use plan::Plan;

use crate::error::Result;
use crate::value_err;

/// Largest kernel (elements) accepted: beyond this the parameters are absurd.
pub const MAX_KERNEL_ELEMENTS: usize = 1 << 26;
/// Largest padded image (elements) a filter may need.
pub const MAX_PADDED_ELEMENTS: usize = 1 << 31;

/// scipy.ndimage boundary modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `d c b a | a b c d | d c b a` (half-sample symmetric).
    Reflect,
    /// `k k k k | a b c d | k k k k` with `k = cval`.
    Constant,
    /// `a a a a | a b c d | d d d d`.
    Nearest,
    /// `d c b | a b c d | c b a` (whole-sample symmetric).
    Mirror,
    /// `a b c d | a b c d | a b c d`.
    Wrap,
}

impl Mode {
    /// scipy's mode names, including the `grid-*` synonyms its filters accept.
    pub fn from_name(name: &str) -> Result<Mode> {
        Ok(match name {
            "reflect" | "grid-mirror" => Mode::Reflect,
            "constant" | "grid-constant" => Mode::Constant,
            "nearest" => Mode::Nearest,
            "mirror" => Mode::Mirror,
            "wrap" | "grid-wrap" => Mode::Wrap,
            _ => {
                return value_err!(
                    "boundary mode not supported: {name:?} (use reflect, constant, nearest, mirror or wrap)"
                )
            }
        })
    }

    /// The sample of a line of `n` that position `i` reads, or None for `cval`.
    fn source(self, i: i64, n: i64) -> Option<usize> {
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let s = match self {
            Mode::Constant => return None,
            Mode::Nearest => i.clamp(0, n - 1),
            Mode::Wrap => i.rem_euclid(n),
            Mode::Reflect => {
                let m = i.rem_euclid(2 * n);
                if m < n {
                    m
                } else {
                    2 * n - 1 - m
                }
            }
            Mode::Mirror => {
                if n == 1 {
                    0
                } else {
                    let m = i.rem_euclid(2 * n - 2);
                    if m < n {
                        m
                    } else {
                        2 * n - 2 - m
                    }
                }
            }
        };
        Some(s as usize)
    }
}

/// One Gabor filter, with scikit-image's derived quantities (computed by the façade
/// exactly as scikit-image does: sigmas from the bandwidth, `cos`/`sin` of theta and
/// the kernel's half sizes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gabor {
    pub frequency: f64,
    pub sigma_x: f64,
    pub sigma_y: f64,
    pub cos_theta: f64,
    pub sin_theta: f64,
    pub offset: f64,
    /// Kernel columns are `-half_x..=half_x`, rows `-half_y..=half_y`.
    pub half_x: usize,
    pub half_y: usize,
}

impl Gabor {
    /// Reject parameters no kernel can be built from.
    pub fn check(&self) -> Result<()> {
        let all = [
            self.frequency,
            self.sigma_x,
            self.sigma_y,
            self.cos_theta,
            self.sin_theta,
            self.offset,
        ];
        if all.iter().any(|v| !v.is_finite()) {
            return value_err!("Gabor parameters must be finite, got {self:?}");
        }
        if self.frequency < 0.0 {
            return value_err!("frequency must be >= 0, got {}", self.frequency);
        }
        if self.sigma_x <= 0.0 || self.sigma_y <= 0.0 {
            return value_err!(
                "sigma_x and sigma_y must be > 0, got {} and {}",
                self.sigma_x,
                self.sigma_y
            );
        }
        let (h, w) = self.kernel_shape();
        if h.checked_mul(w).is_none_or(|n| n > MAX_KERNEL_ELEMENTS) {
            return value_err!(
                "Gabor kernel of {h} x {w} is too large (at most {MAX_KERNEL_ELEMENTS} elements): \
                 frequency or sigma is absurd"
            );
        }
        Ok(())
    }

    /// `(rows, cols)` of the kernel.
    pub fn kernel_shape(&self) -> (usize, usize) {
        (2 * self.half_y + 1, 2 * self.half_x + 1)
    }

    /// scikit-image's normalization `1 / (2 pi sigma_x sigma_y)`.
    pub fn scale(&self) -> f64 {
        1.0 / (2.0 * PI * self.sigma_x * self.sigma_y)
    }

    fn two_pi_f(&self) -> f64 {
        2.0 * PI * self.frequency
    }

    fn isotropic(&self) -> bool {
        self.sigma_x == self.sigma_y
    }
}

/// scikit-image's kernel before scaling: `exp(-(rx^2/sx^2 + ry^2/sy^2)/2 + i(2 pi f rx + offset))`
/// with `rx = x cos + y sin`, `ry = -x sin + y cos`, in row-major `(y, x)` order.
pub fn kernel_unscaled(g: &Gabor, re: &mut [f64], im: &mut [f64]) -> Result<()> {
    g.check()?;
    let (h, w) = g.kernel_shape();
    if re.len() != h * w || im.len() != h * w {
        return value_err!("kernel outputs must have {h} x {w} values");
    }
    let (ct, st) = (g.cos_theta, g.sin_theta);
    let (sx2, sy2) = (g.sigma_x * g.sigma_x, g.sigma_y * g.sigma_y);
    let tpf = g.two_pi_f();
    for (r, (re_row, im_row)) in re
        .chunks_exact_mut(w)
        .zip(im.chunks_exact_mut(w))
        .enumerate()
    {
        let y = r as f64 - g.half_y as f64;
        for (c, (er, ei)) in re_row.iter_mut().zip(im_row.iter_mut()).enumerate() {
            let x = c as f64 - g.half_x as f64;
            let rotx = x * ct + y * st;
            let roty = -x * st + y * ct;
            let magnitude = (-0.5 * (rotx * rotx / sx2 + roty * roty / sy2)).exp();
            let phase = tpf * rotx + g.offset;
            *er = magnitude * phase.cos();
            *ei = magnitude * phase.sin();
        }
    }
    Ok(())
}

/// Reserve the output planes (and `out_im` when `both`) and the strip planes.
fn reserve_planes(
    s: &mut GaborScratch,
    rows: usize,
    pad: &Padded,
    hy: usize,
    both: bool,
) -> Result<()> {
    reserve(&mut s.out_re, rows * pad.w)?;
    if both {
        reserve(&mut s.out_im, rows * pad.w)?;
    }
    let strip = (rows + 2 * hy + 1) * STRIP.min(pad.w);
    reserve(&mut s.t_re, strip)?;
    reserve(&mut s.t_im, strip)
}

fn check_image(len: usize, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return value_err!("The parameter `image` cannot be an empty array");
    }
    if rows.checked_mul(cols) != Some(len) {
        return value_err!("image has {len} values, expected {rows} x {cols}");
    }
    Ok(())
}

fn check_cval(mode: Mode, cval: f64) -> Result<()> {
    if mode == Mode::Constant && !cval.is_finite() {
        return value_err!("cval must be finite, got {cval}");
    }
    Ok(())
}

