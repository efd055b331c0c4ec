//! The separable path: a complex row pass, demodulation, a real Gaussian column pass.
use super::buffers::{aligned, Padded, STRIP};
use super::plan::SeparableTaps;
use super::Gabor;
use crate::simd::F64s;

/// Where the column pass sends each block of finished pixels.
pub(crate) trait Sink<S: F64s, const NV: usize> {
    /// `u` (real, imaginary) of output row `y`, columns `x .. x + NV * LANES`, before the
    /// row's `C e^{i (offset + wy y)}`.
    ///
    /// # Safety
    /// `y < rows` and `x + NV * LANES <= w` of the plane the sink writes.
    unsafe fn put(&mut self, y: usize, x: usize, re: &[S; NV], im: &[S; NV]);
}

/// Magnitudes `C |u|` into a `rows x w` plane.
pub(crate) struct MagnitudeSink {
    pub(crate) scale: f64,
    pub(crate) out: *mut f64,
    pub(crate) w: usize,
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
pub(crate) struct ResponseSink<'a> {
    pub(crate) remod: &'a [(f64, f64)],
    pub(crate) out_re: *mut f64,
    pub(crate) out_im: *mut f64,
    pub(crate) w: usize,
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
pub(crate) unsafe fn row_pass<S: F64s, const RB: usize>(
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
pub(crate) unsafe fn column_pair<S: F64s, const NV: usize, K: Sink<S, NV>>(
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
pub(crate) fn separable<S: F64s, const NV: usize, const RB: usize, K: Sink<S, NV>>(
    pad: &Padded,
    padded: &[f64],
    rows: usize,
    g: &Gabor,
    taps: &SeparableTaps,
    t_re: &mut Vec<f64>,
    t_im: &mut Vec<f64>,
    sink: &mut K,
) {
    let (row_cos, row_sin, col) = (&taps.row_cos[..], &taps.row_sin[..], &taps.col[..]);
    let demod = taps.demod.as_deref();
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
