//! Orientation bins: a fast arctangent with a guard band, the exact path, and a table
//! of every byte gradient.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Orientations closer than this to a boundary may fall on either side depending on
/// the arctangent's last bits (a few ulp of 180 = 1e-13 degree): ask the oracle.
pub(crate) const ON_BOUNDARY_DEG: f64 = 1e-9;

/// The arctangent polynomial's error bound (Abramowitz & Stegun 4.4.48, |e| <= 1e-5 rad
/// = 5.8e-4 degree) with a 3x margin: outside this distance from a boundary the
/// approximate angle is on the same side as numpy's.
pub(crate) const GUARD_DEG: f64 = 2e-3;
pub(crate) const RAD_TO_DEG: f64 = 180.0 / std::f64::consts::PI;

/// skimage's orientation of a gradient: `np.rad2deg(np.arctan2(gy, gx)) % 180`.
#[inline]
pub(crate) fn exact_orientation(gy: f64, gx: f64) -> f64 {
    let a = gy.atan2(gx) * RAD_TO_DEG;
    // numpy's floored modulo (npy_divmod): fmod, then shift negatives by the divisor.
    let m = a % 180.0;
    if m != 0.0 && m < 0.0 {
        m + 180.0
    } else if m == 0.0 {
        0.0
    } else {
        m
    }
}

/// Orientation in degrees, within [`GUARD_DEG`] of the true one, for a non-zero gradient.
///
/// float32 and selects only, so that loops over it vectorise 8 lanes wide; its error
/// (polynomial 5.8e-4 degree, float32 rounding ~1e-5 degree) stays well inside the guard.
/// Gradients beyond float32's range give NaN, which callers treat as inconclusive.
#[inline(always)]
pub(crate) fn approx_orientation(gy: f32, gx: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (ax, ay) = (gx.abs(), gy.abs());
    let steep = ay > ax;
    let r = if steep { ax } else { ay } / if steep { ay } else { ax };
    let r2 = r * r;
    let a = r * (0.999_866 + r2 * (-0.330_299_5 + r2 * (0.180_141 + r2 * (-0.085_133 + r2 * 0.020_835_1))));
    // Angle of (|gx|, |gy|) in [0, pi/2]; orientations are modulo pi, so a gradient in
    // the second or fourth quadrant sits at pi minus that.
    let a = if steep { FRAC_PI_2 - a } else { a };
    let a = if (gx < 0.0) != (gy < 0.0) { PI - a } else { a };
    a * (180.0 / PI)
}

/// Orientation bins: bin `i` holds orientations in `[bounds[i], bounds[i + 1])`.
pub(crate) struct Bins {
    n: usize,
    /// `(180 / n) * i` in f64, as skimage computes them, for i in 0..=n.
    bounds: Vec<f64>,
    per_degree: f64,
    /// [`GUARD_DEG`] in bins, plus slack for the rounding of `bounds` and of `t * n / 180`.
    guard_bins: f64,
    /// Bins of the exact angles 0, 45, 90 and 135 degrees (axes and diagonals).
    lattice: [u32; 4],
}

/// Marks "no bin" (an orientation that rounds to 180 degrees, skimage drops it).
pub(crate) const NO_BIN: u32 = 0x7fff_ffff;
/// Flag on a bin: the orientation is within [`ON_BOUNDARY_DEG`] of a boundary.
pub(crate) const ON_BOUNDARY: u32 = 0x8000_0000;
/// Placeholder in [`Bins::bin_row`]: the fast test was not conclusive.
pub(crate) const UNSETTLED: u32 = 0x7fff_fffe;

impl Bins {
    pub(crate) fn new(n: usize) -> Self {
        let bounds: Vec<f64> = (0..=n).map(|i| (180.0 / n as f64) * i as f64).collect();
        let per_degree = n as f64 / 180.0;
        let guard_bins = GUARD_DEG * per_degree + 1e-9;
        let mut bins = Bins { n, bounds, per_degree, guard_bins, lattice: [NO_BIN; 4] };
        bins.lattice = [0.0, 45.0, 90.0, 135.0].map(|a| bins.exact_bin(a));
        bins
    }

    /// skimage's test `end <= orientation < start`, scanning like its per-bin loop would.
    pub(crate) fn exact_bin(&self, orientation: f64) -> u32 {
        // The bounds are sorted: find the last bound <= orientation.
        let k = self.bounds.partition_point(|&b| b <= orientation);
        if k == 0 || k > self.n {
            NO_BIN
        } else {
            (k - 1) as u32
        }
    }

    /// Bin of a non-zero gradient, flagged with [`ON_BOUNDARY`] when not certain.
    #[inline(always)]
    pub(crate) fn bin(&self, gy: f64, gx: f64) -> u32 {
        // Axes and diagonals: numpy's arctan2 gives exactly 0, 90, 45 and 135 degrees.
        if gy == 0.0 {
            return self.lattice[0];
        }
        if gx == 0.0 {
            return self.lattice[2];
        }
        if gx.abs() == gy.abs() {
            return if (gx > 0.0) == (gy > 0.0) { self.lattice[1] } else { self.lattice[3] };
        }
        let a = approx_orientation(gy as f32, gx as f32) as f64;
        let k = ((a * self.per_degree) as usize).min(self.n - 1);
        // Both comparisons are false for NaN (overflowed gradients): exact path.
        if a - GUARD_DEG >= self.bounds[k] && a + GUARD_DEG < self.bounds[k + 1] {
            k as u32
        } else {
            self.checked_bin(exact_orientation(gy, gx))
        }
    }

    /// Magnitudes and bins of a row of gradients: [`NO_BIN`] where the magnitude is 0,
    /// [`UNSETTLED`] where the fast test is not conclusive (near a boundary, on an axis
    /// or diagonal): the caller asks [`Bins::bin`] for those few.
    ///
    /// Branch-free loops over the row, so they vectorise.
    #[inline(always)]
    pub(crate) fn bin_row(&self, gx: &[f64], gy: &[f64], mag: &mut [f64], bin: &mut [u32]) {
        let (n, gx, gy, mag, bin) = magnitudes(gx, gy, mag, bin);
        // Position in bins; clear of the boundaries by more than the approximation error.
        let margin = self.guard_bins;
        let last = (self.n - 1) as f64;
        for i in 0..n {
            let (x, y) = (gx[i], gy[i]);
            let t = approx_orientation(y as f32, x as f32) as f64 * self.per_degree;
            let k = t.floor();
            let f = t - k;
            let lattice = x == 0.0 || y == 0.0 || x.abs() == y.abs();
            // False for NaN too: the 0/0 angle of a zero gradient, overflowed gradients.
            let clear = f > margin && f < 1.0 - margin && k <= last && !lattice;
            // k is a small whole number when clear: read it from the mantissa of k + 2^52
            // (a float-to-int conversion without saturation logic, so it vectorises).
            let k_bits = (k + 4_503_599_627_370_496.0).to_bits() as u32;
            let other = if mag[i] == 0.0 { NO_BIN } else { UNSETTLED };
            bin[i] = if clear { k_bits } else { other };
        }
    }

    /// Magnitudes, and the positions in a [`byte_gradient_bins`] table of integer
    /// gradients in [-255, 255] (the caller looks the bins up while summing).
    #[inline(always)]
    pub(crate) fn table_row(&self, gx: &[f64], gy: &[f64], mag: &mut [f64], bin: &mut [u32]) {
        let (n, gx, gy, _, bin) = magnitudes(gx, gy, mag, bin);
        // Whole numbers below 2^31 read from the mantissa of x + 2^52: vectorises.
        for i in 0..n {
            let at = (gy[i] + 255.0) * BYTE_SIDE as f64 + (gx[i] + 255.0);
            bin[i] = (at + 4_503_599_627_370_496.0).to_bits() as u32;
        }
    }

    /// [`Bins::exact_bin`], flagged with [`ON_BOUNDARY`] when a boundary is too close.
    pub(crate) fn checked_bin(&self, orientation: f64) -> u32 {
        let k = self.bounds.partition_point(|&b| b <= orientation);
        let near = |i: usize| i < self.bounds.len() && (orientation - self.bounds[i]).abs() < ON_BOUNDARY_DEG;
        let flag = if (k > 0 && near(k - 1)) || near(k) || orientation.is_nan() { ON_BOUNDARY } else { 0 };
        self.exact_bin(orientation) | flag
    }
}

/// `mag = sqrt(gx^2 + gy^2)` over a row (skimage's float order); returns the row length
/// and the four slices cut to it, so the callers' loops run without bounds checks.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn magnitudes<'a>(
    gx: &'a [f64],
    gy: &'a [f64],
    mag: &'a mut [f64],
    bin: &'a mut [u32],
) -> (usize, &'a [f64], &'a [f64], &'a mut [f64], &'a mut [u32]) {
    let n = gx.len();
    let (gx, gy, mag, bin) = (&gx[..n], &gy[..n], &mut mag[..n], &mut bin[..n]);
    for i in 0..n {
        mag[i] = (gx[i] * gx[i] + gy[i] * gy[i]).sqrt();
    }
    (n, gx, gy, mag, bin)
}

/// Entries of a byte-gradient table that are not bins.
pub(crate) const TABLE_ZERO: u8 = 255;
pub(crate) const TABLE_SLOW: u8 = 254;
pub(crate) const BYTE_SIDE: usize = 511;

/// Bin of every integer gradient in [-255, 255]^2, the gradients of a byte image.
///
/// One byte per gradient (255: zero gradient, 254: take the slow path), 261 KB per
/// orientation count, built once per process with the same tests as [`Bins::bin_row`]
/// and shared by all threads. None for more than 253 orientations.
pub(crate) fn byte_gradient_bins(orientations: usize) -> Option<Arc<Vec<u8>>> {
    type Tables = Mutex<HashMap<usize, Arc<Vec<u8>>>>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    if orientations > TABLE_SLOW as usize - 1 {
        return None;
    }
    let mut tables = TABLES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let table = tables.entry(orientations).or_insert_with(|| {
        let bins = Bins::new(orientations);
        let gx: Vec<f64> = (0..BYTE_SIDE).map(|i| i as f64 - 255.0).collect();
        let mut mag = vec![0.0; BYTE_SIDE];
        let mut bin = vec![0u32; BYTE_SIDE];
        let mut table = Vec::with_capacity(BYTE_SIDE * BYTE_SIDE);
        for row in 0..BYTE_SIDE {
            let gy = vec![row as f64 - 255.0; BYTE_SIDE];
            bins.bin_row(&gx, &gy, &mut mag, &mut bin);
            table.extend(bin.iter().zip(&gx).map(|(&b, &x)| match b {
                NO_BIN => TABLE_ZERO,
                UNSETTLED => match bins.bin(gy[0], x) {
                    b if b >= TABLE_SLOW as u32 => TABLE_SLOW,
                    b => b as u8,
                },
                b => b as u8,
            }));
        }
        Arc::new(table)
    });
    Some(table.clone())
}
