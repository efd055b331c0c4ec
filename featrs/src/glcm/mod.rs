//! Gray-level co-occurrence matrices and their texture properties, with
//! scikit-image's numbers (`skimage.feature.graycomatrix` / `graycoprops`).
//!
//! Two ways to get properties:
//! - [`props_dense`] reads a dense `levels x levels x n_dist x n_angle` matrix, following
//!   scikit-image's float formulas term by term (what `graycoprops` does);
//! - [`props_from_pairs`] never builds the matrix: every property is an exact integer
//!   function of pair statistics (moments, a histogram of `|i - j|`, and sum of squared
//!   cell counts accumulated while counting), divided once at the end.
mod counts;
mod dense;
mod pair_props;
mod pair_stats;
mod small;
mod grid;
#[cfg(test)]
mod tests;

pub use counts::{cooccurrence, normalize};
pub use dense::props_dense;
pub use pair_props::props_from_pairs;
pub use pair_stats::PairScratch;
pub use grid::props_grid;
pub use small::{View, SMALL_LEVELS_MAX};

use crate::error::Result;
use crate::value_err;

/// Sum of each offset's values over the cells of a C-ordered `cells x n_offsets` matrix,
/// cell after cell. For 4 and 16 offsets the sums stay in registers (the same additions in
/// the same order, so no bit changes): kept in memory, each add waited on the last store.
pub(crate) fn offset_sums<T: Copy, A: Copy + Default + std::ops::AddAssign>(
    p: &[T],
    n_offsets: usize,
    value: impl Fn(T) -> A,
) -> Vec<A> {
    fn fixed<T: Copy, A: Copy + Default + std::ops::AddAssign, const N: usize>(p: &[T], value: impl Fn(T) -> A) -> Vec<A> {
        let mut sums = [A::default(); N];
        for cell in p.chunks_exact(N) {
            for o in 0..N {
                sums[o] += value(cell[o]);
            }
        }
        sums.to_vec()
    }
    match n_offsets {
        4 => fixed::<T, A, 4>(p, value),
        16 => fixed::<T, A, 16>(p, value),
        _ => {
            let mut sums = vec![A::default(); n_offsets];
            for cell in p.chunks_exact(n_offsets) {
                for (s, &v) in sums.iter_mut().zip(cell) {
                    *s += value(v);
                }
            }
            sums
        }
    }
}

/// Correlation is reported as "unsure" when a standard deviation computed in floating
/// point falls below this; the caller then reproduces scikit-image's own float rounding
/// (which decides between 1 and rounding noise around its 1e-15 threshold).
pub const UNSURE_STD: f64 = 1e-6;

/// scikit-image's threshold under which a standard deviation counts as zero.
pub(crate) const ZERO_STD: f64 = 1e-15;

/// A texture property of `graycoprops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    Contrast,
    Dissimilarity,
    Homogeneity,
    Energy,
    Correlation,
    Asm,
    Mean,
    Variance,
    Std,
    Entropy,
}

impl Prop {
    /// Every property, in `graycoprops`' documentation order.
    pub const ALL: [Prop; 10] = [
        Prop::Contrast,
        Prop::Dissimilarity,
        Prop::Homogeneity,
        Prop::Energy,
        Prop::Correlation,
        Prop::Asm,
        Prop::Mean,
        Prop::Variance,
        Prop::Std,
        Prop::Entropy,
    ];

    /// Parse scikit-image's property name (case-sensitive, like scikit-image).
    pub fn from_name(name: &str) -> Result<Prop> {
        Ok(match name {
            "contrast" => Prop::Contrast,
            "dissimilarity" => Prop::Dissimilarity,
            "homogeneity" => Prop::Homogeneity,
            "energy" => Prop::Energy,
            "correlation" => Prop::Correlation,
            "ASM" => Prop::Asm,
            "mean" => Prop::Mean,
            "variance" => Prop::Variance,
            "std" => Prop::Std,
            "entropy" => Prop::Entropy,
            _ => return value_err!("{name} is an invalid property"),
        })
    }
}

/// What to measure of an 8-bit image: the properties of the matrix of each offset.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub offsets: &'a [(i64, i64)],
    pub levels: usize,
    pub symmetric: bool,
    pub props: &'a [Prop],
}

impl Spec<'_> {
    /// Values of one image: `props.len() * offsets.len()`.
    pub fn len(&self) -> usize {
        self.props.len() * self.offsets.len()
    }

    /// The outputs of one image: [`Spec::len`] values and an `unsure` flag per offset.
    pub(crate) fn check_outputs(&self, out: &[f64], unsure: &[u8]) -> Result<()> {
        if out.len() != self.len() || unsure.len() != self.offsets.len() {
            return value_err!("outputs must have {} x {} values", self.props.len(), self.offsets.len());
        }
        Ok(())
    }
}

/// scikit-image's rounding of offsets: half away from zero, then truncation.
pub(crate) fn round_half_away(x: f64) -> i64 {
    // `as` saturates, so absurd (finite) distances give offsets beyond any image.
    (if x > 0.0 { x + 0.5 } else { x - 0.5 }) as i64
}

/// Pixel offsets `(d_row, d_col)` for every distance then angle, in the order
/// `P[..., d, a]` uses (`index = d * n_angles + a`).
pub fn offsets(distances: &[f64], angles: &[f64]) -> Result<Vec<(i64, i64)>> {
    if distances.is_empty() || angles.is_empty() {
        return value_err!("distances and angles must not be empty");
    }
    if let Some(d) = distances.iter().find(|d| !d.is_finite()) {
        return value_err!("distances must be finite, got {d}");
    }
    if let Some(a) = angles.iter().find(|a| !a.is_finite()) {
        return value_err!("angles must be finite, got {a}");
    }
    let mut out = Vec::with_capacity(distances.len() * angles.len());
    for &d in distances {
        for &a in angles {
            out.push((round_half_away(a.sin() * d), round_half_away(a.cos() * d)));
        }
    }
    Ok(out)
}

/// Rows and columns of the pixels `i` whose partner `j = (r + dr, c + dc)` is inside
/// the image: `(r0, r1, c0, c1)`, half-open, possibly empty.
pub(crate) fn pair_window(rows: usize, cols: usize, dr: i64, dc: i64) -> (usize, usize, usize, usize) {
    let span = |n: usize, d: i64| -> (usize, usize) {
        let n = n as i128;
        let d = d as i128;
        let lo = 0i128.max(-d);
        let hi = n.min(n - d);
        if hi <= lo {
            (0, 0)
        } else {
            (lo as usize, hi as usize)
        }
    };
    let (r0, r1) = span(rows, dr);
    let (c0, c1) = span(cols, dc);
    if r0 == r1 || c0 == c1 {
        (0, 0, 0, 0)
    } else {
        (r0, r1, c0, c1)
    }
}

pub(crate) fn check_shape(len: usize, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return value_err!("The parameter `image` cannot be an empty array");
    }
    if rows.checked_mul(cols) != Some(len) {
        return value_err!("image has {len} values, expected {rows} x {cols}");
    }
    Ok(())
}

pub(crate) fn check_levels<T: Copy + Into<u64>>(image: &[T], levels: usize) -> Result<()> {
    let max = image.iter().map(|&v| v.into()).max().unwrap_or(0);
    if max >= levels as u64 {
        return value_err!(
            "The maximum grayscale value in the image should be smaller than the number of levels."
        );
    }
    Ok(())
}
