//! Local binary patterns with scikit-image's numbers.
//!
//! Reproduces `skimage.feature.local_binary_pattern` (0.26): neighbour `i` sits at
//! `(r + rp[i], c + cp[i])` with the offsets rounded to 5 decimals by numpy (the caller
//! passes them, computed exactly as skimage does), its value is skimage's bilinear
//! interpolation with zeros outside the image, evaluated with the same operations in the
//! same order, and bit `i` is set when `value - center >= 0`.
//!
//! Instead of interpolating pixel by pixel, each neighbour is evaluated for a whole image
//! row at once over a zero-padded copy of the image: the interpolation weights depend on
//! the column only through `(c + cp) - floor(c + cp)`, which is tabulated once per
//! neighbour, so the inner loop is branch-free arithmetic over contiguous rows.
mod codes;
mod fast;
#[cfg(target_arch = "x86_64")]
mod fast_avx512;
mod fast_plan;
mod grid;
mod scan;
#[cfg(test)]
mod tests;

pub use codes::code;
pub use fast::FAST_MAX_POINTS;
pub use fast_plan::FastPlan;
pub use grid::{histogram_grid, GridPlan, GridScratch};
pub use scan::Plan;
use scan::{ColumnWeights, Row};

use crate::error::{FeatError, Result};
use crate::value_err;

/// LBP methods of `skimage.feature.local_binary_pattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Default,
    Ror,
    Uniform,
    NriUniform,
    Var,
}

impl Method {
    /// Parse skimage's names (case-insensitive, as skimage lower-cases them).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "default" => Ok(Method::Default),
            "ror" => Ok(Method::Ror),
            "uniform" => Ok(Method::Uniform),
            "nri_uniform" => Ok(Method::NriUniform),
            "var" => Ok(Method::Var),
            _ => value_err!(
                "method must be one of 'default', 'ror', 'uniform', 'nri_uniform', 'var', got {name:?}"
            ),
        }
    }

    /// Largest supported `P`: codes of `default`/`ror` are skimage's int32 sums of
    /// `2**i`, the other methods keep the pattern in 64 bits.
    pub fn max_points(self) -> usize {
        match self {
            Method::Default | Method::Ror => 31,
            _ => 64,
        }
    }

    /// Number of distinct codes (histogram bins); `None` for `var`, which is not a code.
    pub fn n_codes(self, p: usize) -> Option<usize> {
        match self {
            Method::Default | Method::Ror => Some(1 << p),
            Method::Uniform => Some(p + 2),
            Method::NriUniform => Some(p * (p - 1) + 3),
            Method::Var => None,
        }
    }
}

/// Largest image side: keeps `c + cp` exact enough that `floor(c + cp) - c` is the same
/// for every column (the padded-row evaluation relies on it).
pub const MAX_SIDE: usize = 1 << 24;

/// Patterns up to this many points are mapped to codes through a lookup table.
const LUT_MAX_POINTS: usize = 12;

/// A configured LBP operator: `P` neighbours at the given offsets, one method.
#[derive(Debug, Clone)]
pub struct Lbp {
    p: usize,
    method: Method,
    rp: Vec<f64>,
    cp: Vec<f64>,
    lut: Option<Vec<u32>>,
}

impl Lbp {
    /// `rp`, `cp`: skimage's `np.round(-R * sin(2*pi*i/P), 5)` and `np.round(R * cos(...), 5)`.
    pub fn new(p: usize, rp: &[f64], cp: &[f64], method: Method) -> Result<Self> {
        if p == 0 || p > method.max_points() {
            return value_err!("P must be in [1, {}] for method {method:?}, got {p}", method.max_points());
        }
        if rp.len() != p || cp.len() != p {
            return value_err!("expected {p} neighbour offsets, got {} and {}", rp.len(), cp.len());
        }
        if rp.iter().chain(cp).any(|v| !v.is_finite()) {
            return value_err!("neighbour offsets must be finite (R must be a finite number)");
        }
        let lut = (method != Method::Var && p <= LUT_MAX_POINTS)
            .then(|| (0..1u64 << p).map(|m| code(m, p, method)).collect());
        Ok(Lbp { p, method, rp: rp.to_vec(), cp: cp.to_vec(), lut })
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// Number of neighbours `P`.
    pub fn points(&self) -> usize {
        self.p
    }

    /// Column weights and padding for images of `rows x cols` (reusable across a batch).
    pub fn plan(&self, rows: usize, cols: usize) -> Result<Plan> {
        if rows == 0 || cols == 0 {
            return value_err!("The parameter `image` cannot be an empty array");
        }
        if rows > MAX_SIDE || cols > MAX_SIDE {
            return value_err!("image sides must be at most {MAX_SIDE} pixels, got {rows} x {cols}");
        }
        // A neighbour whose offset reaches a full side away reads only the zero border.
        let inside = |off: f64, side: usize| off.abs() < side as f64;
        let pad = self.fast_pad(rows, cols);
        let columns = (0..self.p)
            .map(|i| {
                if inside(self.rp[i], rows) && inside(self.cp[i], cols) {
                    ColumnWeights::new(self.cp[i], cols, pad).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;
        Ok(Plan { rows, cols, pad, columns })
    }

    /// skimage's output: codes (or variances for `var`) as float64, `rows x cols`.
    pub fn codes_into<T: Copy + Into<f64>>(
        &self,
        image: &[T],
        rows: usize,
        cols: usize,
        out: &mut [f64],
    ) -> Result<()> {
        if out.len() != rows * cols {
            return value_err!("output holds {} values, expected {rows} x {cols}", out.len());
        }
        let plan = self.plan(rows, cols)?;
        self.scan(&plan, image, |r, row| {
            let dst = &mut out[r * cols..(r + 1) * cols];
            match row {
                Row::Patterns(masks) => match &self.lut {
                    Some(lut) => dst.iter_mut().zip(masks).for_each(|(d, &m)| *d = lut[m as usize] as f64),
                    None => dst
                        .iter_mut()
                        .zip(masks)
                        .for_each(|(d, &m)| *d = code(m, self.p, self.method) as f64),
                },
                Row::Variances(v) => dst.copy_from_slice(v),
            }
        })
    }

    /// Normalised histogram of the codes: `out[k]` = fraction of pixels with code `k`;
    /// `plan` is [`Lbp::plan`] for the image's size.
    pub fn histogram_with<T: Copy + Into<f64>>(&self, plan: &Plan, image: &[T], out: &mut [f64]) -> Result<()> {
        let Some(n_bins) = self.method.n_codes(self.p) else {
            return value_err!("method 'var' gives variances, not codes: it has no histogram");
        };
        if out.len() != n_bins {
            return value_err!("histogram holds {} bins, expected {n_bins}", out.len());
        }
        // Four interleaved counters per code: runs of equal codes (flat regions) do not
        // wait on one memory location.
        let mut counts = Vec::new();
        if counts.try_reserve_exact(4 * n_bins).is_err() {
            return Err(FeatError::Memory(format!("cannot allocate the counts of {n_bins} codes")));
        }
        counts.resize(4 * n_bins, 0u32);
        self.scan(plan, image, |_, row| {
            if let Row::Patterns(masks) = row {
                match &self.lut {
                    Some(lut) => {
                        for (c, &m) in masks.iter().enumerate() {
                            counts[4 * lut[m as usize] as usize + (c & 3)] += 1;
                        }
                    }
                    None => {
                        for (c, &m) in masks.iter().enumerate() {
                            counts[4 * code(m, self.p, self.method) as usize + (c & 3)] += 1;
                        }
                    }
                }
            }
        })?;
        let size = (plan.rows * plan.cols) as f64;
        for (o, c) in out.iter_mut().zip(counts.chunks_exact(4)) {
            *o = c.iter().map(|&v| v as u64).sum::<u64>() as f64 / size;
        }
        Ok(())
    }
}
