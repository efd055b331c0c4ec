//! Bank statistics: mean and variance of the response magnitude, per filter.
use super::buffers::{aligned, pad, GaborScratch, Padded};
use super::direct::direct;
use super::plan::{Plan, PlanKind};
use super::separable::{separable, MagnitudeSink};
use super::{check_cval, check_image, reserve_planes, Gabor, Mode};
use crate::error::Result;
use crate::simd::{F64s, Scalar};
use crate::value_err;

/// A filter bank planned for images of one size.
#[derive(Debug, Clone)]
pub struct BankPlan {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) filters: Vec<Plan>,
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
    bank_simd(plan, &pad, cols, scratch, out);
    Ok(())
}

crate::simd::multiversion! {
    /// [`bank_body`] on the best instruction set, with the block sizes that suit it.
    fn bank_simd(plan: &BankPlan, pad: &Padded, cols: usize, s: &mut GaborScratch, out: &mut [f64]) {
        avx512("avx512f") => bank_body::<crate::simd::Avx512, 2, 4>,
        avx2("avx2,fma") => bank_body::<crate::simd::Avx2, 1, 2>,
        _ => bank_body::<Scalar, 1, 2>,
    }
}

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
            PlanKind::Separable(taps) => {
                let mut sink = MagnitudeSink {
                    scale: filter.g.scale(),
                    out: magnitude.as_mut_ptr(),
                    w,
                };
                separable::<S, NV, RB, _>(pad, &s.padded, rows, &filter.g, taps, &mut s.t_re, &mut s.t_im, &mut sink);
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
