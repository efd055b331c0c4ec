//! GLCM properties from pair statistics.
use super::pair_stats::{pair_stats, Needs, PairScratch, PairStats};
use super::small::{props_small, View, SMALL_LEVELS_MAX};
use super::{check_levels, check_shape, Prop, Spec};
use crate::error::Result;
use crate::value_err;

/// Value of one property from pair statistics; `None` when correlation hits a zero
/// variance that scikit-image's float arithmetic decides (see [`UNSURE_STD`]).
pub(super) fn prop_from_stats(st: &PairStats, symmetric: bool, prop: Prop) -> Option<f64> {
    let n = st.pairs;
    if n == 0 {
        // An all-zero matrix: scikit-image divides by 1 and reads zeros (correlation: 1).
        return Some(if prop == Prop::Correlation { 1.0 } else { 0.0 });
    }
    let nf = n as f64;
    // Marginal moments of the (symmetric) matrix with total `tot`.
    let (tot, s_i, s_j, s_ii, s_jj, s_ij) = if symmetric {
        let s = st.s_i + st.s_j;
        let ss = st.s_ii + st.s_jj;
        (2 * n, s, s, ss, ss, 2 * st.s_ij)
    } else {
        (n, st.s_i, st.s_j, st.s_ii, st.s_jj, st.s_ij)
    };
    let (tot, s_i, s_j, s_ii, s_jj, s_ij) = (
        tot as i128,
        s_i as i128,
        s_j as i128,
        s_ii as i128,
        s_jj as i128,
        s_ij as i128,
    );
    let totf = tot as f64;
    Some(match prop {
        // sum (i - j)^2 = sum i^2 + sum j^2 - 2 sum ij, all exact.
        Prop::Contrast => (st.s_ii + st.s_jj - 2 * st.s_ij) as f64 / nf,
        Prop::Dissimilarity => st.s_absdiff as f64 / nf,
        Prop::Homogeneity => {
            let mut s = 0.0;
            for (k, &h) in st.diff_hist.iter().enumerate() {
                if h != 0 {
                    s += h as f64 / (1.0 + (k * k) as f64);
                }
            }
            s / nf
        }
        Prop::Asm | Prop::Energy => {
            let asm = if symmetric {
                // Off-diagonal keys are two cells of the same count, diagonal ones hold 2x:
                // 2 sum_off U^2 + 4 sum_diag U^2 = 2 sum_all U^2 + 2 sum_diag U^2.
                (2 * st.sq_all as u128 + 2 * st.sq_diag as u128) as f64 / (totf * totf)
            } else {
                st.sq_all as f64 / (totf * totf)
            };
            if prop == Prop::Energy {
                asm.sqrt()
            } else {
                asm
            }
        }
        Prop::Entropy => st.entropy,
        Prop::Mean => s_i as f64 / totf,
        Prop::Variance | Prop::Std => {
            let var = (tot * s_ii - s_i * s_i) as f64 / (totf * totf);
            if prop == Prop::Std {
                var.sqrt()
            } else {
                var
            }
        }
        Prop::Correlation => {
            let var_i = tot * s_ii - s_i * s_i;
            let var_j = tot * s_jj - s_j * s_j;
            if var_i == 0 && var_j == 0 {
                // A single cell: scikit-image's means are exact, its deviations 0.
                1.0
            } else if var_i == 0 || var_j == 0 {
                return None;
            } else {
                let cov = tot * s_ij - s_i * s_j;
                cov as f64 / ((var_i as f64).sqrt() * (var_j as f64).sqrt())
            }
        }
    })
}

/// Write the properties of offset `o` from its statistics into `out[k * n_offsets + o]`:
/// NaN, and `unsure[o] = 1`, where scikit-image's float arithmetic decides.
#[inline]
pub(super) fn write_props(st: &PairStats, spec: &Spec<'_>, o: usize, out: &mut [f64], unsure: &mut [u8]) {
    for (k, &prop) in spec.props.iter().enumerate() {
        out[k * spec.offsets.len() + o] = prop_from_stats(st, spec.symmetric, prop).unwrap_or_else(|| {
            unsure[o] = 1;
            f64::NAN
        });
    }
}

/// GLCM properties of an 8-bit image without building the matrix.
///
/// `out` receives [`Spec::len`] values, prop-major then offset (the layout of
/// `graycoprops(P, prop).ravel()` concatenated over props). `unsure[o]` is set to 1 when
/// a correlation of offset `o` needs scikit-image's float arithmetic (a zero variance of
/// exactly one marginal); its value in `out` is then NaN.
pub fn props_from_pairs(
    image: &[u8],
    rows: usize,
    cols: usize,
    spec: &Spec<'_>,
    scratch: &mut PairScratch,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    check_shape(image.len(), rows, cols)?;
    spec.check_outputs(out, unsure)?;
    if rows.checked_mul(cols).is_none_or(|n| n > (1 << 31)) {
        return value_err!("image of {rows} x {cols} pixels is too large (at most 2^31 pixels)");
    }
    let view = View { data: image, rows, cols, stride: cols };
    if spec.levels <= SMALL_LEVELS_MAX {
        return props_small(&view, spec, &mut scratch.small, out, unsure);
    }
    check_levels(image, spec.levels)?;
    let needs = Needs::of(spec.props);
    unsure.fill(0);
    if scratch.dirty {
        scratch.table.fill(0);
    }
    scratch.dirty = true;
    for (o, &off) in spec.offsets.iter().enumerate() {
        let st = pair_stats(&view, off, spec.symmetric, needs, scratch);
        write_props(&st, spec, o, out, unsure);
    }
    scratch.dirty = false;
    Ok(())
}
