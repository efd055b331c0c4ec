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

/// Largest kernel (elements) accepted: beyond this the parameters are absurd.
pub const MAX_KERNEL_ELEMENTS: usize = 1 << 26;
/// Largest padded image (elements) a filter may need.
pub const MAX_PADDED_ELEMENTS: usize = 1 << 26;

/// Lanes processed together in the hot loops (one AVX-512 or two AVX2 registers).
const LANES: usize = 8;

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
        let all = [self.frequency, self.sigma_x, self.sigma_y, self.cos_theta, self.sin_theta, self.offset];
        if all.iter().any(|v| !v.is_finite()) {
            return value_err!("Gabor parameters must be finite, got {self:?}");
        }
        if self.frequency <= 0.0 {
            return value_err!("frequency must be > 0, got {}", self.frequency);
        }
        if self.sigma_x <= 0.0 || self.sigma_y <= 0.0 {
            return value_err!("sigma_x and sigma_y must be > 0, got {} and {}", self.sigma_x, self.sigma_y);
        }
        let (h, w) = self.kernel_shape();
        if h.checked_mul(w).map_or(true, |n| n > MAX_KERNEL_ELEMENTS) {
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
    for (r, (re_row, im_row)) in re.chunks_exact_mut(w).zip(im.chunks_exact_mut(w)).enumerate() {
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

/// Reusable buffers of the filters (one per thread in batches).
#[derive(Default)]
pub struct GaborScratch {
    padded: Vec<f64>,
    t_re: Vec<f64>,
    t_im: Vec<f64>,
    u_re: Vec<f64>,
    u_im: Vec<f64>,
    w_re: Vec<f64>,
    w_im: Vec<f64>,
    magnitude: Vec<f64>,
    image: Vec<f64>,
}

/// The image extended by `py` rows and `px` columns on each side (columns further to a
/// multiple of [`LANES`] on the right), as `scipy.ndimage` extends it.
struct Padded {
    py: usize,
    px: usize,
    /// Row length: `round_up(cols, LANES) + 2 px`.
    stride: usize,
}

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

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
    let stride = round_up(cols, LANES) + 2 * px;
    let height = rows + 2 * py;
    if height.checked_mul(stride).map_or(true, |n| n > MAX_PADDED_ELEMENTS) {
        return value_err!(
            "a {rows} x {cols} image padded for a kernel of half size {py} x {px} is too large"
        );
    }
    let col_src: Vec<Option<usize>> =
        (0..stride).map(|c| mode.source(c as i64 - px as i64, cols as i64)).collect();
    out.clear();
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
    Ok(Padded { py, px, stride })
}

/// `a * b + c`, fused where the CPU has FMA (the dispatching wrapper decides).
trait MulAdd {
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
}

struct Fused;
struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

/// Per-filter 1-D factors of the separable form.
struct Factors {
    /// Row pass: `G(k) cos(wx k)`, `G(k) sin(wx k)` for `k = 0..=half_x`.
    row_cos: Vec<f64>,
    row_sin: Vec<f64>,
    /// Column pass: `G(k)` for `k = 0..=half_y`.
    col: Vec<f64>,
}

impl Factors {
    fn new(g: &Gabor) -> Factors {
        let s2 = g.sigma_x * g.sigma_x;
        let gauss = |k: usize| (-0.5 * ((k * k) as f64 / s2)).exp();
        let tpf = g.two_pi_f();
        let (row_cos, row_sin) = (0..=g.half_x)
            .map(|k| {
                let phase = tpf * (k as f64 * g.cos_theta);
                (gauss(k) * phase.cos(), gauss(k) * phase.sin())
            })
            .unzip();
        Factors { row_cos, row_sin, col: (0..=g.half_y).map(gauss).collect() }
    }
}

/// Row pass of one padded row: `t[x] = sum_k G(k) e^{i wx k} p[x0 + x - k]` for
/// `x < t.len()`, then multiplied by `(dc, -ds)` (the row's demodulation).
#[inline(always)]
fn row_pass<M: MulAdd>(p: &[f64], x0: usize, f: &Factors, (dc, ds): (f64, f64), t_re: &mut [f64], t_im: &mut [f64]) {
    let hx = f.row_cos.len() - 1;
    for (x, (tr, ti)) in t_re.chunks_exact_mut(LANES).zip(t_im.chunks_exact_mut(LANES)).enumerate() {
        let c0 = x0 + x * LANES;
        let mut re: [f64; LANES] = p[c0..c0 + LANES].try_into().expect("lanes");
        let mut im = [0.0; LANES];
        for k in 1..=hx {
            let a: &[f64; LANES] = p[c0 - k..c0 - k + LANES].try_into().expect("lanes");
            let b: &[f64; LANES] = p[c0 + k..c0 + k + LANES].try_into().expect("lanes");
            let (c, s) = (f.row_cos[k], f.row_sin[k]);
            for l in 0..LANES {
                re[l] = M::mul_add(c, a[l] + b[l], re[l]);
                im[l] = M::mul_add(s, a[l] - b[l], im[l]);
            }
        }
        for l in 0..LANES {
            tr[l] = M::mul_add(re[l], dc, im[l] * ds);
            ti[l] = M::mul_add(im[l], dc, -(re[l] * ds));
        }
    }
}

/// Column pass for output row `y`: `u[x] = sum_k G(k) t[y + hy - k][x]` over the
/// demodulated planes of row length `w8`.
#[inline(always)]
fn column_pass<M: MulAdd>(t_re: &[f64], t_im: &[f64], w8: usize, y: usize, col: &[f64], u_re: &mut [f64], u_im: &mut [f64]) {
    let hy = col.len() - 1;
    let centre = (y + hy) * w8;
    for x in (0..w8).step_by(LANES) {
        let mut re: [f64; LANES] = t_re[centre + x..centre + x + LANES].try_into().expect("lanes");
        let mut im: [f64; LANES] = t_im[centre + x..centre + x + LANES].try_into().expect("lanes");
        for (k, &g) in col.iter().enumerate().skip(1) {
            let (above, below) = (centre - k * w8 + x, centre + k * w8 + x);
            let ar: &[f64; LANES] = t_re[above..above + LANES].try_into().expect("lanes");
            let br: &[f64; LANES] = t_re[below..below + LANES].try_into().expect("lanes");
            let ai: &[f64; LANES] = t_im[above..above + LANES].try_into().expect("lanes");
            let bi: &[f64; LANES] = t_im[below..below + LANES].try_into().expect("lanes");
            for l in 0..LANES {
                re[l] = M::mul_add(g, ar[l] + br[l], re[l]);
                im[l] = M::mul_add(g, ai[l] + bi[l], im[l]);
            }
        }
        u_re[x..x + LANES].copy_from_slice(&re);
        u_im[x..x + LANES].copy_from_slice(&im);
    }
}

/// Separable filtering of the padded image with isotropic `g`; `emit(y, u_re, u_im)` gets
/// each output row before the final `C e^{i(offset + wy y)}` (first `cols` values valid).
#[inline(always)]
fn separable<M: MulAdd>(
    pad: &Padded,
    padded: &[f64],
    rows: usize,
    cols: usize,
    g: &Gabor,
    s: &mut GaborScratch,
    mut emit: impl FnMut(usize, &[f64], &[f64]),
) {
    let f = Factors::new(g);
    let hy = g.half_y;
    let w8 = round_up(cols, LANES);
    let t_rows = rows + 2 * hy;
    s.t_re.resize(t_rows * w8, 0.0);
    s.t_im.resize(t_rows * w8, 0.0);
    let tpf = g.two_pi_f();
    for j in 0..t_rows {
        let rho = j as f64 - hy as f64;
        let phase = tpf * (rho * g.sin_theta);
        let r = pad.py - hy + j;
        let p = &padded[r * pad.stride..(r + 1) * pad.stride];
        row_pass::<M>(
            p,
            pad.px,
            &f,
            (phase.cos(), phase.sin()),
            &mut s.t_re[j * w8..(j + 1) * w8],
            &mut s.t_im[j * w8..(j + 1) * w8],
        );
    }
    s.u_re.resize(w8, 0.0);
    s.u_im.resize(w8, 0.0);
    for y in 0..rows {
        column_pass::<M>(&s.t_re, &s.t_im, w8, y, &f.col, &mut s.u_re, &mut s.u_im);
        emit(y, &s.u_re[..cols], &s.u_im[..cols]);
    }
}

/// Direct 2-D convolution with the kernel `(w_re, w_im)` of `g`'s shape.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn direct<M: MulAdd>(
    pad: &Padded,
    padded: &[f64],
    rows: usize,
    cols: usize,
    g: &Gabor,
    w_re: &[f64],
    w_im: &[f64],
    out_re: &mut [f64],
    out_im: &mut [f64],
) {
    let (kh, kw) = g.kernel_shape();
    let (hx, hy) = (g.half_x, g.half_y);
    // scipy skips weights within DBL_EPSILON of zero; so does this.
    let taps: Vec<(usize, usize, f64, f64)> = (0..kh)
        .flat_map(|u| (0..kw).map(move |v| (u, v)))
        .map(|(u, v)| (u, v, w_re[u * kw + v], w_im[u * kw + v]))
        .filter(|t| t.2.abs() > f64::EPSILON || t.3.abs() > f64::EPSILON)
        .map(|(u, v, a, b)| {
            let keep = |w: f64| if w.abs() > f64::EPSILON { w } else { 0.0 };
            (u, v, keep(a), keep(b))
        })
        .collect();
    for y in 0..rows {
        let (acc_re, acc_im) = (&mut out_re[y * cols..(y + 1) * cols], &mut out_im[y * cols..(y + 1) * cols]);
        acc_re.fill(0.0);
        acc_im.fill(0.0);
        for &(u, v, a, b) in &taps {
            // Convolution: weight (u, v) meets input (y + hy - (u - hy), x + hx - (v - hx)).
            let r = pad.py - hy + y + 2 * hy - u;
            let c = pad.px - hx + 2 * hx - v;
            let src = &padded[r * pad.stride + c..r * pad.stride + c + cols];
            for ((ar, ai), &p) in acc_re.iter_mut().zip(acc_im.iter_mut()).zip(src) {
                *ar = M::mul_add(a, p, *ar);
                *ai = M::mul_add(b, p, *ai);
            }
        }
    }
}

/// Kernel weights as scikit-image convolves them: complex128, or complex64 (each part
/// rounded to float32, then scaled in float32) for float32 images.
fn weights(g: &Gabor, single: bool, re: &mut Vec<f64>, im: &mut Vec<f64>) -> Result<()> {
    let (h, w) = g.kernel_shape();
    re.resize(h * w, 0.0);
    im.resize(h * w, 0.0);
    kernel_unscaled(g, re, im)?;
    let scale = g.scale();
    for v in re.iter_mut().chain(im.iter_mut()) {
        *v = if single { ((*v as f32) * (scale as f32)) as f64 } else { *v * scale };
    }
    Ok(())
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
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            return unsafe { filter_avx2(image, rows, cols, g, mode, cval, single, scratch, out_re, out_im) };
        }
    }
    filter_body::<Unfused>(image, rows, cols, g, mode, cval, single, scratch, out_re, out_im)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn filter_avx2(
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
    filter_body::<Fused>(image, rows, cols, g, mode, cval, single, scratch, out_re, out_im)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn filter_body<M: MulAdd>(
    image: &[f64],
    rows: usize,
    cols: usize,
    g: &Gabor,
    mode: Mode,
    cval: f64,
    single: bool,
    s: &mut GaborScratch,
    out_re: &mut [f64],
    out_im: &mut [f64],
) -> Result<()> {
    check_image(image.len(), rows, cols)?;
    g.check()?;
    if out_re.len() != image.len() || out_im.len() != image.len() {
        return value_err!("outputs must have {rows} x {cols} values");
    }
    if !cval.is_finite() && mode == Mode::Constant {
        return value_err!("cval must be finite, got {cval}");
    }
    if let Some(v) = image.iter().find(|v| !v.is_finite()) {
        return value_err!("image must be finite, got a value {v}");
    }
    let mut padded = std::mem::take(&mut s.padded);
    let pad = pad(image, rows, cols, g.half_y, g.half_x, mode, cval, &mut padded)?;
    if g.isotropic() && !single {
        let (scale, tpf) = (g.scale(), g.two_pi_f());
        separable::<M>(&pad, &padded, rows, cols, g, s, |y, u_re, u_im| {
            let phase = g.offset + tpf * (y as f64 * g.sin_theta);
            let (c, sn) = (scale * phase.cos(), scale * phase.sin());
            let (o_re, o_im) = (&mut out_re[y * cols..(y + 1) * cols], &mut out_im[y * cols..(y + 1) * cols]);
            for x in 0..cols {
                o_re[x] = M::mul_add(u_re[x], c, -(u_im[x] * sn));
                o_im[x] = M::mul_add(u_re[x], sn, u_im[x] * c);
            }
        });
    } else {
        let (mut w_re, mut w_im) = (std::mem::take(&mut s.w_re), std::mem::take(&mut s.w_im));
        weights(g, single, &mut w_re, &mut w_im)?;
        direct::<M>(&pad, &padded, rows, cols, g, &w_re, &w_im, out_re, out_im);
        s.w_re = w_re;
        s.w_im = w_im;
    }
    s.padded = padded;
    Ok(())
}

/// Mean and variance of `|gabor(image / 255, g)|` for every filter of a bank: `out`
/// gets `[mean_0, var_0, mean_1, var_1, ...]` (variance as numpy's `var`, ddof 0).
#[allow(clippy::too_many_arguments)]
pub fn bank_stats(
    image: &[u8],
    rows: usize,
    cols: usize,
    bank: &[Gabor],
    mode: Mode,
    cval: f64,
    scratch: &mut GaborScratch,
    out: &mut [f64],
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            return unsafe { bank_stats_avx2(image, rows, cols, bank, mode, cval, scratch, out) };
        }
    }
    bank_stats_body::<Unfused>(image, rows, cols, bank, mode, cval, scratch, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn bank_stats_avx2(
    image: &[u8],
    rows: usize,
    cols: usize,
    bank: &[Gabor],
    mode: Mode,
    cval: f64,
    scratch: &mut GaborScratch,
    out: &mut [f64],
) -> Result<()> {
    bank_stats_body::<Fused>(image, rows, cols, bank, mode, cval, scratch, out)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bank_stats_body<M: MulAdd>(
    image: &[u8],
    rows: usize,
    cols: usize,
    bank: &[Gabor],
    mode: Mode,
    cval: f64,
    s: &mut GaborScratch,
    out: &mut [f64],
) -> Result<()> {
    check_image(image.len(), rows, cols)?;
    if out.len() != 2 * bank.len() {
        return value_err!("output must have 2 x {} values", bank.len());
    }
    if !cval.is_finite() && mode == Mode::Constant {
        return value_err!("cval must be finite, got {cval}");
    }
    for g in bank {
        g.check()?;
    }
    let mut img = std::mem::take(&mut s.image);
    img.clear();
    img.extend(image.iter().map(|&v| v as f64 / 255.0));
    let py = bank.iter().map(|g| g.half_y).max().unwrap_or(0);
    let px = bank.iter().map(|g| g.half_x).max().unwrap_or(0);
    let mut padded = std::mem::take(&mut s.padded);
    let pad = pad(&img, rows, cols, py, px, mode, cval, &mut padded)?;
    let mut magnitude = std::mem::take(&mut s.magnitude);
    magnitude.resize(rows * cols, 0.0);
    let (mut w_re, mut w_im) = (std::mem::take(&mut s.w_re), std::mem::take(&mut s.w_im));
    let mut plane_im = Vec::new();
    for (g, stats) in bank.iter().zip(out.chunks_exact_mut(2)) {
        if g.isotropic() {
            let scale = g.scale();
            separable::<M>(&pad, &padded, rows, cols, g, s, |y, u_re, u_im| {
                for ((m, &a), &b) in magnitude[y * cols..(y + 1) * cols].iter_mut().zip(u_re).zip(u_im) {
                    *m = scale * (a * a + b * b).sqrt();
                }
            });
        } else {
            weights(g, false, &mut w_re, &mut w_im)?;
            plane_im.resize(rows * cols, 0.0);
            direct::<M>(&pad, &padded, rows, cols, g, &w_re, &w_im, &mut magnitude, &mut plane_im);
            for (m, &b) in magnitude.iter_mut().zip(&plane_im) {
                *m = m.hypot(b);
            }
        }
        let n = magnitude.len() as f64;
        let mean = magnitude.iter().sum::<f64>() / n;
        let var = magnitude.iter().map(|&m| (m - mean) * (m - mean)).sum::<f64>() / n;
        stats[0] = mean;
        stats[1] = var;
    }
    s.w_re = w_re;
    s.w_im = w_im;
    s.magnitude = magnitude;
    s.padded = padded;
    s.image = img;
    Ok(())
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
        assert_eq!(line(Mode::Reflect), some(&[2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1]));
        assert_eq!(line(Mode::Mirror), some(&[0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]));
        assert_eq!(line(Mode::Wrap), some(&[2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]));
        assert_eq!(line(Mode::Nearest), some(&[0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 3]));
        assert_eq!(Mode::Constant.source(-1, 4), None);
        assert_eq!(Mode::Mirror.source(-5, 1), Some(0));
    }

    #[test]
    fn separable_equals_direct() {
        let (rows, cols) = (13, 11);
        let image: Vec<f64> = (0..rows * cols).map(|k| ((k * 37) % 101) as f64 / 7.0).collect();
        for (mode, theta) in [(Mode::Reflect, 0.4), (Mode::Constant, 2.0), (Mode::Wrap, -1.0), (Mode::Mirror, 0.0)] {
            let g = gabor(0.2, theta, 2.3, 2.3);
            let mut s = GaborScratch::default();
            let (mut a_re, mut a_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
            filter(&image, rows, cols, &g, mode, 1.5, false, &mut s, &mut a_re, &mut a_im).unwrap();
            // Anisotropic by one ulp: forces the direct path on the same kernel.
            let g2 = Gabor { sigma_y: f64::from_bits(g.sigma_y.to_bits() + 1), ..g };
            let (mut b_re, mut b_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
            filter(&image, rows, cols, &g2, mode, 1.5, false, &mut s, &mut b_re, &mut b_im).unwrap();
            let max = b_re.iter().chain(&b_im).fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in a_re.iter().zip(&b_re).chain(a_im.iter().zip(&b_im)) {
                assert!((a - b).abs() <= 1e-12 * max, "{mode:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn absurd_parameters_are_errors() {
        assert!(gabor(0.0, 0.0, 1.0, 1.0).check().is_err());
        assert!(Gabor { half_x: 1 << 20, half_y: 1 << 20, ..gabor(0.1, 0.0, 1.0, 1.0) }.check().is_err());
        assert!(gabor(0.1, f64::NAN, 1.0, 1.0).check().is_err());
    }
}
