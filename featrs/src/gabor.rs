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

use crate::error::Result;
use crate::value_err;
use crate::simd::{level, F64s, Level, Scalar};

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
        if self.frequency <= 0.0 {
            return value_err!("frequency must be > 0, got {}", self.frequency);
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

/// Row length of the working planes is a multiple of this (a multiple of the widest
/// vector block).
const ALIGN: usize = 32;

/// Columns per strip of the separable path: the row-pass output of a strip is small
/// enough that the column pass's sliding window of rows stays in L1.
const STRIP: usize = 32;

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Reusable buffers of the filters (one per thread in batches).
#[derive(Default)]
pub struct GaborScratch {
    image: Vec<f64>,
    padded: Vec<f64>,
    t_re: Vec<f64>,
    t_im: Vec<f64>,
    out_re: Vec<f64>,
    out_im: Vec<f64>,
}

/// Make room for [`aligned`]`(buf, len)` without aborting when memory runs out.
fn reserve(buf: &mut Vec<f64>, len: usize) -> Result<()> {
    let need = len.saturating_add(8);
    if buf.capacity() < need {
        buf.clear();
        if buf.try_reserve_exact(need).is_err() {
            return value_err!("cannot allocate {need} float64 values of working memory");
        }
    }
    Ok(())
}

/// `len` zeroed values of `buf` starting at a 64-byte boundary (so whole-vector loads
/// of rows whose length is a multiple of 8 never straddle cache lines).
fn aligned(buf: &mut Vec<f64>, len: usize) -> &mut [f64] {
    buf.clear();
    buf.resize(len + 8, 0.0);
    let skip = (buf.as_ptr() as usize).wrapping_neg() % 64 / std::mem::size_of::<f64>();
    &mut buf[skip..skip + len]
}

/// Geometry of an image extended by `py` rows and `px` columns on each side (and on the
/// right up to a row length of `w + 2 px`, `w` = cols rounded up to [`ALIGN`]).
#[derive(Debug, Clone, Copy)]
struct Padded {
    py: usize,
    px: usize,
    /// Working row length (cols rounded up).
    w: usize,
    stride: usize,
}

/// Extend `image` as `scipy.ndimage` does into `out`.
#[allow(clippy::too_many_arguments)]
fn pad(
    image: &[f64],
    rows: usize,
    cols: usize,
    py: usize,
    px: usize,
    mode: Mode,
    cval: f64,
    out: &mut Vec<f64>,
) -> Result<Padded> {
    let w = round_up(cols, ALIGN);
    let stride = w + 2 * px;
    let height = rows + 2 * py;
    if height
        .checked_mul(stride)
        .is_none_or(|n| n > MAX_PADDED_ELEMENTS)
    {
        return value_err!(
            "a {rows} x {cols} image padded for a kernel of half size {py} x {px} is too large"
        );
    }
    let col_src: Vec<Option<usize>> = (0..stride)
        .map(|c| mode.source(c as i64 - px as i64, cols as i64))
        .collect();
    out.clear();
    if out.try_reserve_exact(height * stride).is_err() {
        return value_err!("cannot allocate the padded {height} x {stride} image");
    }
    out.resize(height * stride, cval);
    for (r, dst) in out.chunks_exact_mut(stride).enumerate() {
        if let Some(sr) = mode.source(r as i64 - py as i64, rows as i64) {
            let src = &image[sr * cols..(sr + 1) * cols];
            for (d, s) in dst.iter_mut().zip(&col_src) {
                if let Some(s) = s {
                    *d = src[*s];
                }
            }
        }
    }
    Ok(Padded { py, px, w, stride })
}

/// `(cos, sin)` of `start + j * step` for `j < n`: exact every 16 values, rotated in
/// between (error a few ulp).
fn phasors(start: f64, step: f64, n: usize) -> Vec<(f64, f64)> {
    let (sin_step, cos_step) = step.sin_cos();
    let mut out = Vec::with_capacity(n);
    let mut cur = (1.0, 0.0);
    for j in 0..n {
        if j % 16 == 0 {
            let (s, c) = (start + j as f64 * step).sin_cos();
            cur = (c, s);
        }
        out.push(cur);
        cur = (
            cur.0 * cos_step - cur.1 * sin_step,
            cur.0 * sin_step + cur.1 * cos_step,
        );
    }
    out
}

/// Everything about one filter that does not depend on the pixels of an image of
/// `rows` x `cols`.
#[derive(Debug, Clone)]
pub struct Plan {
    g: Gabor,
    kind: PlanKind,
}

#[derive(Debug, Clone)]
enum PlanKind {
    Separable {
        /// Row pass: `G(k) cos(wx k)`, `G(k) sin(wx k)` for `k = 0..=half_x`.
        row_cos: Vec<f64>,
        row_sin: Vec<f64>,
        /// Column pass: `G(k)` for `k = 0..=half_y`.
        col: Vec<f64>,
        /// Demodulation `e^{i wy rho}` of the row-pass rows `rho = -half_y..rows + half_y`
        /// (None when `wy == 0`).
        demod: Option<Vec<(f64, f64)>>,
        /// Output rows' `C e^{i (offset + wy y)}` as (cos, sin).
        remod: Vec<(f64, f64)>,
    },
    Direct {
        /// Taps `(row, col, re, im)` of the kernel, zero weights dropped like scipy does.
        taps: Vec<(usize, usize, f64, f64)>,
    },
}

impl Plan {
    /// Plan `g` for images of `rows` rows; `single` rounds the kernel to complex64 (the
    /// kernel scikit-image uses for float32 images), which forces the direct path.
    pub fn new(g: &Gabor, rows: usize, single: bool) -> Result<Plan> {
        g.check()?;
        let kind = if g.isotropic() && !single {
            let s2 = g.sigma_x * g.sigma_x;
            let gauss = |k: usize| (-0.5 * ((k * k) as f64 / s2)).exp();
            let tpf = g.two_pi_f();
            let (row_cos, row_sin) = (0..=g.half_x)
                .map(|k| {
                    let phase = tpf * (k as f64 * g.cos_theta);
                    (gauss(k) * phase.cos(), gauss(k) * phase.sin())
                })
                .unzip();
            let wy = tpf * g.sin_theta;
            let demod =
                (wy != 0.0).then(|| phasors(-(g.half_y as f64) * wy, wy, rows + 2 * g.half_y));
            let scale = g.scale();
            let remod = phasors(g.offset, wy, rows)
                .into_iter()
                .map(|(c, s)| (scale * c, scale * s))
                .collect();
            PlanKind::Separable {
                row_cos,
                row_sin,
                col: (0..=g.half_y).map(gauss).collect(),
                demod,
                remod,
            }
        } else {
            let (h, w) = g.kernel_shape();
            let (mut re, mut im) = (vec![0.0; h * w], vec![0.0; h * w]);
            kernel_unscaled(g, &mut re, &mut im)?;
            let scale = g.scale();
            let weight = |v: f64| {
                let v = if single {
                    ((v as f32) * (scale as f32)) as f64
                } else {
                    v * scale
                };
                // scipy skips weights within DBL_EPSILON of zero.
                if v.abs() > f64::EPSILON {
                    v
                } else {
                    0.0
                }
            };
            let taps = (0..h * w)
                .map(|k| (k / w, k % w, weight(re[k]), weight(im[k])))
                .filter(|t| t.2 != 0.0 || t.3 != 0.0)
                .collect();
            PlanKind::Direct { taps }
        };
        Ok(Plan { g: *g, kind })
    }
}

/// Where the column pass sends each block of finished pixels.
trait Sink<S: F64s, const NV: usize> {
    /// `u` (real, imaginary) of output row `y`, columns `x .. x + NV * LANES`, before the
    /// row's `C e^{i (offset + wy y)}`.
    ///
    /// # Safety
    /// `y < rows` and `x + NV * LANES <= w` of the plane the sink writes.
    unsafe fn put(&mut self, y: usize, x: usize, re: &[S; NV], im: &[S; NV]);
}

/// Magnitudes `C |u|` into a `rows x w` plane.
struct MagnitudeSink {
    scale: f64,
    out: *mut f64,
    w: usize,
}

impl<S: F64s, const NV: usize> Sink<S, NV> for MagnitudeSink {
    #[inline(always)]
    unsafe fn put(&mut self, y: usize, x: usize, re: &[S; NV], im: &[S; NV]) {
        let c = S::splat(self.scale);
        for v in 0..NV {
            let m = c.mul(re[v].mul_add(re[v], im[v].mul(im[v])).sqrt());
            m.store(self.out.add(y * self.w + x + v * S::LANES));
        }
    }
}

/// Real and imaginary responses into two `rows x w` planes.
struct ResponseSink<'a> {
    remod: &'a [(f64, f64)],
    out_re: *mut f64,
    out_im: *mut f64,
    w: usize,
}

impl<S: F64s, const NV: usize> Sink<S, NV> for ResponseSink<'_> {
    #[inline(always)]
    unsafe fn put(&mut self, y: usize, x: usize, re: &[S; NV], im: &[S; NV]) {
        let (c, s) = *self.remod.get_unchecked(y);
        let (c, s) = (S::splat(c), S::splat(s));
        for v in 0..NV {
            let at = y * self.w + x + v * S::LANES;
            re[v].mul(c).sub(im[v].mul(s)).store(self.out_re.add(at));
            re[v].mul_add(s, im[v].mul(c)).store(self.out_im.add(at));
        }
    }
}

/// Row pass of one padded row (`p` at output column 0):
/// `t[x] = e^{-i wy rho} sum_k G(k) e^{i wx k} p[x - k]`, pairing `k` with `-k`, in
/// blocks of `RB` vectors.
///
/// # Safety
/// `p - half_x .. p + w + half_x` readable, `t_* .. + w` writable, `w` a multiple of
/// `RB * LANES`.
#[inline(always)]
unsafe fn row_pass<S: F64s, const RB: usize>(
    p: *const f64,
    w: usize,
    row_cos: &[f64],
    row_sin: &[f64],
    demod: Option<(f64, f64)>,
    t_re: *mut f64,
    t_im: *mut f64,
) {
    let l = S::LANES;
    let mut x = 0;
    while x < w {
        let q = p.add(x);
        let mut re = [S::splat(0.0); RB];
        let mut im = [S::splat(0.0); RB];
        for (v, r) in re.iter_mut().enumerate() {
            *r = S::load(q.add(v * l));
        }
        for (k, (&c, &s)) in row_cos[1..].iter().zip(&row_sin[1..]).enumerate() {
            let k = k + 1;
            let (c, s) = (S::splat(c), S::splat(s));
            for v in 0..RB {
                let (a, b) = (S::load(q.sub(k).add(v * l)), S::load(q.add(k + v * l)));
                re[v] = c.mul_add(a.add(b), re[v]);
                im[v] = s.mul_add(a.sub(b), im[v]);
            }
        }
        for v in 0..RB {
            let (tr, ti) = match demod {
                // (re + i im) (dc - i ds)
                Some((dc, ds)) => {
                    let (dc, ds) = (S::splat(dc), S::splat(ds));
                    (
                        re[v].mul_add(dc, im[v].mul(ds)),
                        im[v].mul(dc).sub(re[v].mul(ds)),
                    )
                }
                None => (re[v], im[v]),
            };
            tr.store(t_re.add(x + v * l));
            ti.store(t_im.add(x + v * l));
        }
        x += RB * l;
    }
}

/// Column pass for output rows `y` and `y + 1` (row `c = y + half_y` of the planes, of
/// row length `w`, is `y`'s centre) at plane column `x` (image column `x_out`):
/// `u = sum_k G(k) t[c - k]`, pairing `k` with `-k`. Consecutive taps share rows between
/// the two outputs, so each step loads two new rows.
///
/// # Safety
/// Rows `c - half_y ..= c + 1 + half_y` of both planes readable at `x .. x + NV * LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn column_pair<S: F64s, const NV: usize, K: Sink<S, NV>>(
    t_re: *const f64,
    t_im: *const f64,
    w: usize,
    c: usize,
    x: usize,
    x_out: usize,
    col: &[f64],
    y: usize,
    rows: usize,
    sink: &mut K,
) {
    #[inline(always)]
    unsafe fn load<S: F64s, const NV: usize>(plane: *const f64, at: usize) -> [S; NV] {
        let mut v = [S::splat(0.0); NV];
        for (k, lane) in v.iter_mut().enumerate() {
            *lane = S::load(plane.add(at + k * S::LANES));
        }
        v
    }
    let (mut acc_re0, mut acc_im0) = (
        load::<S, NV>(t_re, (c) * w + x),
        load::<S, NV>(t_im, (c) * w + x),
    );
    let (mut acc_re1, mut acc_im1) = (
        load::<S, NV>(t_re, (c + 1) * w + x),
        load::<S, NV>(t_im, (c + 1) * w + x),
    );
    // m: row c + 1 - k (y + 1's lower partner), p: row c + k (y's upper partner).
    let (mut m_re, mut m_im) = (acc_re0, acc_im0);
    let (mut p_re, mut p_im) = (acc_re1, acc_im1);
    for (k, &gk) in col.iter().enumerate().skip(1) {
        let g = S::splat(gk);
        let (mn_re, mn_im) = (
            load::<S, NV>(t_re, (c - k) * w + x),
            load::<S, NV>(t_im, (c - k) * w + x),
        );
        let (pn_re, pn_im) = (
            load::<S, NV>(t_re, (c + 1 + k) * w + x),
            load::<S, NV>(t_im, (c + 1 + k) * w + x),
        );
        for v in 0..NV {
            acc_re0[v] = g.mul_add(mn_re[v].add(p_re[v]), acc_re0[v]);
            acc_im0[v] = g.mul_add(mn_im[v].add(p_im[v]), acc_im0[v]);
            acc_re1[v] = g.mul_add(m_re[v].add(pn_re[v]), acc_re1[v]);
            acc_im1[v] = g.mul_add(m_im[v].add(pn_im[v]), acc_im1[v]);
        }
        (m_re, m_im, p_re, p_im) = (mn_re, mn_im, pn_re, pn_im);
    }
    sink.put(y, x_out, &acc_re0, &acc_im0);
    if y + 1 < rows {
        sink.put(y + 1, x_out, &acc_re1, &acc_im1);
    }
}

/// Separable filtering of a padded image; results go to `sink`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn separable<S: F64s, const NV: usize, const RB: usize, K: Sink<S, NV>>(
    pad: &Padded,
    padded: &[f64],
    rows: usize,
    g: &Gabor,
    row_cos: &[f64],
    row_sin: &[f64],
    col: &[f64],
    demod: Option<&[(f64, f64)]>,
    t_re: &mut Vec<f64>,
    t_im: &mut Vec<f64>,
    sink: &mut K,
) {
    let (hx, hy, w) = (g.half_x, g.half_y, pad.w);
    debug_assert!(hx <= pad.px && hy <= pad.py && row_cos.len() == hx + 1 && col.len() == hy + 1);
    let t_rows = rows + 2 * hy;
    let sw = STRIP.min(w);
    // One spare (zero) row: the last output pair may be half outside the image.
    let t_re = aligned(t_re, (t_rows + 1) * sw);
    let t_im = aligned(t_im, (t_rows + 1) * sw);
    let block = NV * S::LANES;
    for xs in (0..w).step_by(sw) {
        for j in 0..t_rows {
            let r = pad.py - hy + j;
            // SAFETY: row r of the padded image spans columns px - hx .. px + w + hx (hx
            // <= px) and xs + sw <= w; row j of the strip planes has sw values.
            unsafe {
                row_pass::<S, RB>(
                    padded.as_ptr().add(r * pad.stride + pad.px + xs),
                    sw,
                    row_cos,
                    row_sin,
                    demod.map(|d| d[j]),
                    t_re.as_mut_ptr().add(j * sw),
                    t_im.as_mut_ptr().add(j * sw),
                );
            }
        }
        for y in (0..rows).step_by(2) {
            for x in (0..sw).step_by(block) {
                // SAFETY: rows y .. y + 1 + 2 hy < t_rows + 1 exist, x + block <= sw.
                unsafe {
                    column_pair::<S, NV, K>(
                        t_re.as_ptr(),
                        t_im.as_ptr(),
                        sw,
                        y + hy,
                        x,
                        xs + x,
                        col,
                        y,
                        rows,
                        sink,
                    )
                };
            }
        }
    }
}

/// Direct 2-D convolution of a padded image into two `rows x w` planes.
#[inline(always)]
fn direct<S: F64s>(
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

/// Define `$body::<vector type, column blocks, row blocks>(args)` compiled for AVX-512
/// and for AVX2 + FMA (the caller picks one at run time).
macro_rules! dispatch {
    ($avx512:ident, $avx2:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $avx512($($arg: $ty),*) -> $ret {
            $body::<crate::simd::Avx512, 2, 4>($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($arg: $ty),*) -> $ret {
            $body::<crate::simd::Avx2, 1, 2>($($arg),*)
        }
    };
}

/// `skimage.filters.gabor` of a float64 image: real and imaginary responses.
///
/// `single` selects scikit-image's float32-image behaviour (kernel rounded to complex64);
/// results are float64 either way (the caller rounds to the image's dtype).
#[allow(clippy::too_many_arguments)]
pub fn filter(
    image: &[f64],
    rows: usize,
    cols: usize,
    g: &Gabor,
    mode: Mode,
    cval: f64,
    single: bool,
    scratch: &mut GaborScratch,
    out_re: &mut [f64],
    out_im: &mut [f64],
) -> Result<()> {
    check_image(image.len(), rows, cols)?;
    if out_re.len() != image.len() || out_im.len() != image.len() {
        return value_err!("outputs must have {rows} x {cols} values");
    }
    check_cval(mode, cval)?;
    if let Some(v) = image.iter().find(|v| !v.is_finite()) {
        return value_err!("image must be finite, got a value {v}");
    }
    let plan = Plan::new(g, rows, single)?;
    let pad = pad(
        image,
        rows,
        cols,
        g.half_y,
        g.half_x,
        mode,
        cval,
        &mut scratch.padded,
    )?;
    reserve_planes(scratch, rows, &pad, g.half_y, true)?;
    match level() {
        // SAFETY: level() only reports instruction sets this CPU has.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { filter_avx512(&plan, &pad, rows, cols, scratch, out_re, out_im) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { filter_avx2(&plan, &pad, rows, cols, scratch, out_re, out_im) },
        _ => filter_planes::<Scalar, 1, 2>(&plan, &pad, rows, cols, scratch, out_re, out_im),
    }
    Ok(())
}

dispatch!(filter_avx512, filter_avx2, filter_planes,
    (plan: &Plan, pad: &Padded, rows: usize, cols: usize, s: &mut GaborScratch, out_re: &mut [f64], out_im: &mut [f64]) -> ());

/// Responses into `out_re` / `out_im` (`rows x cols`), through `rows x pad.w` planes.
#[inline(always)]
fn filter_planes<S: F64s, const NV: usize, const RB: usize>(
    plan: &Plan,
    pad: &Padded,
    rows: usize,
    cols: usize,
    s: &mut GaborScratch,
    out_re: &mut [f64],
    out_im: &mut [f64],
) {
    let (w_re, w_im) = (
        aligned(&mut s.out_re, rows * pad.w),
        aligned(&mut s.out_im, rows * pad.w),
    );
    match &plan.kind {
        PlanKind::Separable {
            row_cos,
            row_sin,
            col,
            demod,
            remod,
        } => {
            let mut sink = ResponseSink {
                remod,
                out_re: w_re.as_mut_ptr(),
                out_im: w_im.as_mut_ptr(),
                w: pad.w,
            };
            separable::<S, NV, RB, _>(
                pad,
                &s.padded,
                rows,
                &plan.g,
                row_cos,
                row_sin,
                col,
                demod.as_deref(),
                &mut s.t_re,
                &mut s.t_im,
                &mut sink,
            );
        }
        PlanKind::Direct { taps } => direct::<S>(pad, &s.padded, rows, &plan.g, taps, w_re, w_im),
    }
    for y in 0..rows {
        out_re[y * cols..(y + 1) * cols].copy_from_slice(&w_re[y * pad.w..y * pad.w + cols]);
        out_im[y * cols..(y + 1) * cols].copy_from_slice(&w_im[y * pad.w..y * pad.w + cols]);
    }
}

/// A filter bank planned for images of one size.
#[derive(Debug, Clone)]
pub struct BankPlan {
    rows: usize,
    cols: usize,
    filters: Vec<Plan>,
}

impl BankPlan {
    pub fn new(bank: &[Gabor], rows: usize, cols: usize) -> Result<BankPlan> {
        let filters = bank
            .iter()
            .map(|g| Plan::new(g, rows, false))
            .collect::<Result<Vec<_>>>()?;
        Ok(BankPlan {
            rows,
            cols,
            filters,
        })
    }
}

/// Mean and variance of `|gabor(image / 255, g)|` for every filter of a bank: `out`
/// gets `[mean_0, var_0, mean_1, var_1, ...]` (variance as numpy's `var`, ddof 0).
pub fn bank_stats(
    image: &[u8],
    plan: &BankPlan,
    mode: Mode,
    cval: f64,
    scratch: &mut GaborScratch,
    out: &mut [f64],
) -> Result<()> {
    let (rows, cols) = (plan.rows, plan.cols);
    check_image(image.len(), rows, cols)?;
    if out.len() != 2 * plan.filters.len() {
        return value_err!("output must have 2 x {} values", plan.filters.len());
    }
    check_cval(mode, cval)?;
    let mut img = std::mem::take(&mut scratch.image);
    img.clear();
    img.extend(image.iter().map(|&v| v as f64 / 255.0));
    let py = plan.filters.iter().map(|p| p.g.half_y).max().unwrap_or(0);
    let px = plan.filters.iter().map(|p| p.g.half_x).max().unwrap_or(0);
    let padded = pad(&img, rows, cols, py, px, mode, cval, &mut scratch.padded);
    scratch.image = img;
    let pad = padded?;
    let direct = plan
        .filters
        .iter()
        .any(|f| matches!(f.kind, PlanKind::Direct { .. }));
    reserve_planes(scratch, rows, &pad, py, direct)?;
    match level() {
        // SAFETY: level() only reports instruction sets this CPU has.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { bank_avx512(plan, &pad, cols, scratch, out) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { bank_avx2(plan, &pad, cols, scratch, out) },
        _ => bank_body::<Scalar, 1, 2>(plan, &pad, cols, scratch, out),
    }
    Ok(())
}

dispatch!(bank_avx512, bank_avx2, bank_body, (plan: &BankPlan, pad: &Padded, cols: usize, s: &mut GaborScratch, out: &mut [f64]) -> ());

#[inline(always)]
fn bank_body<S: F64s, const NV: usize, const RB: usize>(
    plan: &BankPlan,
    pad: &Padded,
    cols: usize,
    s: &mut GaborScratch,
    out: &mut [f64],
) {
    let (rows, w) = (plan.rows, pad.w);
    let magnitude = aligned(&mut s.out_re, rows * w);
    for (filter, stats) in plan.filters.iter().zip(out.chunks_exact_mut(2)) {
        match &filter.kind {
            PlanKind::Separable {
                row_cos,
                row_sin,
                col,
                demod,
                ..
            } => {
                let mut sink = MagnitudeSink {
                    scale: filter.g.scale(),
                    out: magnitude.as_mut_ptr(),
                    w,
                };
                separable::<S, NV, RB, _>(
                    pad,
                    &s.padded,
                    rows,
                    &filter.g,
                    row_cos,
                    row_sin,
                    col,
                    demod.as_deref(),
                    &mut s.t_re,
                    &mut s.t_im,
                    &mut sink,
                );
            }
            PlanKind::Direct { taps } => {
                let imag = aligned(&mut s.out_im, rows * w);
                direct::<S>(pad, &s.padded, rows, &filter.g, taps, magnitude, imag);
                for (m, &b) in magnitude.iter_mut().zip(imag.iter()) {
                    *m = m.hypot(b);
                }
            }
        }
        let (mean, var) = mean_var::<S>(magnitude, rows, cols, w);
        stats[0] = mean;
        stats[1] = var;
    }
}

/// Mean and (two-pass) variance of the first `cols` values of each `w`-long row.
#[inline(always)]
fn mean_var<S: F64s>(plane: &[f64], rows: usize, cols: usize, w: usize) -> (f64, f64) {
    let l = S::LANES;
    let full = cols / l * l;
    let n = (rows * cols) as f64;
    let (mut acc, mut tail) = (S::splat(0.0), 0.0);
    for row in plane[..rows * w].chunks_exact(w) {
        for x in (0..full).step_by(l) {
            // SAFETY: x + l <= cols <= w.
            acc = acc.add(unsafe { S::load(row.as_ptr().add(x)) });
        }
        tail += row[full..cols].iter().sum::<f64>();
    }
    let mean = (acc.reduce_sum() + tail) / n;
    let m = S::splat(mean);
    let (mut acc, mut tail) = (S::splat(0.0), 0.0);
    for row in plane[..rows * w].chunks_exact(w) {
        for x in (0..full).step_by(l) {
            // SAFETY: as above.
            let d = unsafe { S::load(row.as_ptr().add(x)) }.sub(m);
            acc = d.mul_add(d, acc);
        }
        tail += row[full..cols]
            .iter()
            .map(|&v| (v - mean) * (v - mean))
            .sum::<f64>();
    }
    (mean, (acc.reduce_sum() + tail) / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gabor(frequency: f64, theta: f64, sigma_x: f64, sigma_y: f64) -> Gabor {
        let (ct, st) = (theta.cos(), theta.sin());
        let half = |a: f64, b: f64| (3.0 * a).abs().max((3.0 * b).abs()).max(1.0).ceil() as usize;
        Gabor {
            frequency,
            sigma_x,
            sigma_y,
            cos_theta: ct,
            sin_theta: st,
            offset: 0.3,
            half_x: half(sigma_x * ct, sigma_y * st),
            half_y: half(sigma_y * ct, sigma_x * st),
        }
    }

    #[test]
    fn extension_modes_follow_scipy() {
        let line = |mode: Mode| (-6..10).map(|i| mode.source(i, 4)).collect::<Vec<_>>();
        let some = |v: &[usize]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(
            line(Mode::Reflect),
            some(&[2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1])
        );
        assert_eq!(
            line(Mode::Mirror),
            some(&[0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3])
        );
        assert_eq!(
            line(Mode::Wrap),
            some(&[2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
        );
        assert_eq!(
            line(Mode::Nearest),
            some(&[0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 3])
        );
        assert_eq!(Mode::Constant.source(-1, 4), None);
        assert_eq!(Mode::Mirror.source(-5, 1), Some(0));
    }

    #[test]
    fn separable_equals_direct() {
        let (rows, cols) = (13, 11);
        let image: Vec<f64> = (0..rows * cols)
            .map(|k| ((k * 37) % 101) as f64 / 7.0)
            .collect();
        for (mode, theta) in [
            (Mode::Reflect, 0.4),
            (Mode::Constant, 2.0),
            (Mode::Wrap, -1.0),
            (Mode::Mirror, 0.0),
        ] {
            let g = gabor(0.2, theta, 2.3, 2.3);
            let mut s = GaborScratch::default();
            let (mut a_re, mut a_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
            filter(
                &image, rows, cols, &g, mode, 1.5, false, &mut s, &mut a_re, &mut a_im,
            )
            .unwrap();
            // Anisotropic by one ulp: forces the direct path on the same kernel.
            let g2 = Gabor {
                sigma_y: f64::from_bits(g.sigma_y.to_bits() + 1),
                ..g
            };
            let (mut b_re, mut b_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
            filter(
                &image, rows, cols, &g2, mode, 1.5, false, &mut s, &mut b_re, &mut b_im,
            )
            .unwrap();
            let max = b_re.iter().chain(&b_im).fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in a_re.iter().zip(&b_re).chain(a_im.iter().zip(&b_im)) {
                assert!((a - b).abs() <= 1e-12 * max, "{mode:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn absurd_parameters_are_errors() {
        assert!(gabor(0.0, 0.0, 1.0, 1.0).check().is_err());
        assert!(Gabor {
            half_x: 1 << 20,
            half_y: 1 << 20,
            ..gabor(0.1, 0.0, 1.0, 1.0)
        }
        .check()
        .is_err());
        assert!(gabor(0.1, f64::NAN, 1.0, 1.0).check().is_err());
    }
}
