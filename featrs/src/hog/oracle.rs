//! Decisions on the edge of rounding, taken by numpy itself (see [`Oracle`]).
use super::bins::exact_orientation;
use crate::error::Result;

/// Settles values that sit on a decision edge up to rounding, as numpy computes them.
///
/// skimage takes orientations from numpy's `arctan2` and picks channels by numpy's
/// `hypot`; their last bits depend on numpy's build and the CPU (numpy has SIMD
/// implementations). Most gradients are far from any edge and are decided here, but
/// some sit exactly on one in exact arithmetic: with `transform_sqrt`,
/// `atan2(sqrt(3), 1)` is 60 degrees, a bin boundary, and two channels can have the
/// same magnitude. For those few the Python binding asks numpy itself.
pub trait Oracle: Sync {
    /// `np.rad2deg(np.arctan2(gy, gx)) % 180` for each pair.
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>>;
    /// `np.hypot(gr, gc)`, in float32 when `single` (values are exact float32 then).
    fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>>;
}

/// The C library's `atan2` and `hypot` (pure-Rust callers and tests).
pub struct Libm;

impl Oracle for Libm {
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
        Ok(gy.iter().zip(gx).map(|(&y, &x)| exact_orientation(y, x)).collect())
    }
    fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>> {
        Ok(gr
            .iter()
            .zip(gc)
            .map(|(&r, &c)| if single { (r as f32).hypot(c as f32) as f64 } else { r.hypot(c) })
            .collect())
    }
}
