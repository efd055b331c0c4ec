//! `gabor`: real and imaginary responses of one image.
use super::buffers::{aligned, pad, GaborScratch, Padded};
use super::direct::direct;
use super::plan::{Plan, PlanKind};
use super::separable::{separable, ResponseSink};
use super::{check_cval, check_image, reserve_planes, Gabor, Mode};
use crate::error::Result;
use crate::simd::{F64s, Scalar};
use crate::value_err;

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
    filter_simd(&plan, &pad, rows, cols, scratch, out_re, out_im);
    Ok(())
}

crate::simd::multiversion! {
    /// [`filter_planes`] on the best instruction set, with the block sizes that suit it.
    fn filter_simd(plan: &Plan, pad: &Padded, rows: usize, cols: usize, s: &mut GaborScratch, out_re: &mut [f64], out_im: &mut [f64]) {
        avx512("avx512f") => filter_planes::<crate::simd::Avx512, 2, 4>,
        avx2("avx2,fma") => filter_planes::<crate::simd::Avx2, 1, 2>,
        _ => filter_planes::<Scalar, 1, 2>,
    }
}

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
        PlanKind::Separable(taps) => {
            let mut sink = ResponseSink {
                remod: &taps.remod,
                out_re: w_re.as_mut_ptr(),
                out_im: w_im.as_mut_ptr(),
                w: pad.w,
            };
            separable::<S, NV, RB, _>(pad, &s.padded, rows, &plan.g, taps, &mut s.t_re, &mut s.t_im, &mut sink);
        }
        PlanKind::Direct { taps } => direct::<S>(pad, &s.padded, rows, &plan.g, taps, w_re, w_im),
    }
    for y in 0..rows {
        out_re[y * cols..(y + 1) * cols].copy_from_slice(&w_re[y * pad.w..y * pad.w + cols]);
        out_im[y * cols..(y + 1) * cols].copy_from_slice(&w_im[y * pad.w..y * pad.w + cols]);
    }
}
