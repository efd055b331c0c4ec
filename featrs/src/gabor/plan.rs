//! What a filter needs that does not depend on the pixels: separable or direct taps.
use super::buffers::phasors;
use super::{kernel_unscaled, Gabor};
use crate::error::Result;

/// Everything about one filter that does not depend on the pixels of an image of
/// `rows` x `cols`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) g: Gabor,
    pub(crate) kind: PlanKind,
}

#[derive(Debug, Clone)]
pub(crate) enum PlanKind {
    Separable(SeparableTaps),
    Direct {
        /// Taps `(row, col, re, im)` of the kernel, zero weights dropped like scipy does.
        taps: Vec<(usize, usize, f64, f64)>,
    },
}

/// The 1-D passes of an isotropic kernel.
#[derive(Debug, Clone)]
pub(crate) struct SeparableTaps {
    /// Row pass: `G(k) cos(wx k)`, `G(k) sin(wx k)` for `k = 0..=half_x`.
    pub(crate) row_cos: Vec<f64>,
    pub(crate) row_sin: Vec<f64>,
    /// Column pass: `G(k)` for `k = 0..=half_y`.
    pub(crate) col: Vec<f64>,
    /// Demodulation `e^{i wy rho}` of the row-pass rows `rho = -half_y..rows + half_y`
    /// (None when `wy == 0`).
    pub(crate) demod: Option<Vec<(f64, f64)>>,
    /// Output rows' `C e^{i (offset + wy y)}` as (cos, sin).
    pub(crate) remod: Vec<(f64, f64)>,
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
            PlanKind::Separable(SeparableTaps {
                row_cos,
                row_sin,
                col: (0..=g.half_y).map(gauss).collect(),
                demod,
                remod,
            })
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
