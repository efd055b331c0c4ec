//! Working memory of the filters and the image extended as scipy.ndimage does.
use super::{Mode, MAX_PADDED_ELEMENTS};
use crate::error::Result;
use crate::value_err;

/// Row length of the working planes is a multiple of this (a multiple of the widest
/// vector block).
pub(crate) const ALIGN: usize = 32;

/// Columns per strip of the separable path: the row-pass output of a strip is small
/// enough that the column pass's sliding window of rows stays in L1.
pub(crate) const STRIP: usize = 32;

pub(crate) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Reusable buffers of the filters (one per thread in batches).
#[derive(Default)]
pub struct GaborScratch {
    pub(crate) image: Vec<f64>,
    pub(crate) padded: Vec<f64>,
    pub(crate) t_re: Vec<f64>,
    pub(crate) t_im: Vec<f64>,
    pub(crate) out_re: Vec<f64>,
    pub(crate) out_im: Vec<f64>,
}

/// Make room for [`aligned`]`(buf, len)` without aborting when memory runs out.
pub(crate) fn reserve(buf: &mut Vec<f64>, len: usize) -> Result<()> {
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
pub(crate) fn aligned(buf: &mut Vec<f64>, len: usize) -> &mut [f64] {
    buf.clear();
    buf.resize(len + 8, 0.0);
    let skip = (buf.as_ptr() as usize).wrapping_neg() % 64 / std::mem::size_of::<f64>();
    &mut buf[skip..skip + len]
}

/// Geometry of an image extended by `py` rows and `px` columns on each side (and on the
/// right up to a row length of `w + 2 px`, `w` = cols rounded up to [`ALIGN`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Padded {
    pub(crate) py: usize,
    pub(crate) px: usize,
    /// Working row length (cols rounded up).
    pub(crate) w: usize,
    pub(crate) stride: usize,
}

/// Extend `image` as `scipy.ndimage` does into `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pad(
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
pub(crate) fn phasors(start: f64, step: f64, n: usize) -> Vec<(f64, f64)> {
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
