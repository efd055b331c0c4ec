//! Histogram of Oriented Gradients with scikit-image's numbers.
//!
//! Reproduces `skimage.feature.hog` (0.26): the same central-difference gradient, the same
//! per-pixel choice of the channel with the largest gradient magnitude, the same
//! orientation bins (`[180/n * i, 180/n * (i+1))` in f64), the same cells (the image's
//! bottom/right remainder is ignored), the same float32 running sum per cell and bin in
//! the same row-major order, and the same float32 division by the cell area.
//!
//! Where skimage rescans every cell once per orientation, this makes one pass over the
//! pixels: each pixel's bin is found once and its magnitude added to that bin. Visiting
//! pixels row by row keeps, for every (cell, bin), the order in which skimage adds the
//! same magnitudes, so the float32 sums are bit-identical.
//!
//! The bin comes from a cheap arctangent polynomial; only a pixel whose approximate angle
//! falls within [`GUARD_DEG`] of a bin boundary (or that lies on the axes or diagonals,
//! where the angle is exact) takes the exact path `rad2deg(atan2(gy, gx)) % 180`. Byte
//! images look their bins up in a per-process table of all integer gradients instead
//! ([`byte_gradient_bins`]). The few gradients whose bin or channel depends on numpy's last
//! bits are settled by an [`Oracle`] (numpy itself, from the Python binding).
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::ops::Sub;

use crate::error::{FeatError, Result};
use crate::value_err;

/// Block normalisation methods of `skimage.feature.hog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNorm {
    L1,
    L1Sqrt,
    L2,
    L2Hys,
}

impl BlockNorm {
    /// Parse skimage's spelling: `L1`, `L1-sqrt`, `L2`, `L2-Hys`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "L1" => Ok(BlockNorm::L1),
            "L1-sqrt" => Ok(BlockNorm::L1Sqrt),
            "L2" => Ok(BlockNorm::L2),
            "L2-Hys" => Ok(BlockNorm::L2Hys),
            other => value_err!(
                "block_norm must be one of 'L1', 'L1-sqrt', 'L2', 'L2-Hys', got {other:?}"
            ),
        }
    }
}

/// HOG parameters (skimage's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogParams {
    pub orientations: usize,
    /// `pixels_per_cell` as (rows, cols).
    pub cell: (usize, usize),
    /// `cells_per_block` as (rows, cols).
    pub block: (usize, usize),
    pub norm: BlockNorm,
    pub transform_sqrt: bool,
}

/// Largest accepted `orientations`: bins narrower than 0.003 degree carry no information.
pub const MAX_ORIENTATIONS: usize = 1 << 16;

/// Layout of the descriptor: `(n_blocks_row, n_blocks_col, block.0, block.1, orientations)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogShape {
    pub n_cells: (usize, usize),
    pub n_blocks: (usize, usize),
}

impl HogShape {
    /// Number of values in the descriptor.
    pub fn len(&self, p: &HogParams) -> usize {
        self.n_blocks.0 * self.n_blocks.1 * p.block.0 * p.block.1 * p.orientations
    }
}

/// Check the parameters against an image of `rows x cols` and return the output layout.
pub fn hog_shape(rows: usize, cols: usize, p: &HogParams) -> Result<HogShape> {
    if p.orientations == 0 || p.orientations > MAX_ORIENTATIONS {
        return value_err!("orientations must be in [1, {MAX_ORIENTATIONS}], got {}", p.orientations);
    }
    if p.cell.0 == 0 || p.cell.1 == 0 {
        return value_err!("pixels_per_cell must be positive, got {:?}", p.cell);
    }
    if p.block.0 == 0 || p.block.1 == 0 {
        return value_err!("cells_per_block must be positive, got {:?}", p.block);
    }
    let n_cells = (rows / p.cell.0, cols / p.cell.1);
    if n_cells.0 < p.block.0 || n_cells.1 < p.block.1 {
        return value_err!(
            "The input image is too small given the values of pixels_per_cell and \
             cells_per_block. It should have at least: {} rows and {} cols.",
            p.block.0.saturating_mul(p.cell.0),
            p.block.1.saturating_mul(p.cell.1)
        );
    }
    let n_blocks = (n_cells.0 - p.block.0 + 1, n_cells.1 - p.block.1 + 1);
    let len = [n_blocks.1, p.block.0, p.block.1, p.orientations]
        .iter()
        .try_fold(n_blocks.0, |acc, &d| acc.checked_mul(d));
    match len {
        Some(n) if n <= isize::MAX as usize / 8 => Ok(HogShape { n_cells, n_blocks }),
        _ => value_err!("the HOG descriptor would be too large for these parameters"),
    }
}

/// Floating-point type skimage computes the gradient in (`float32` for float32 input).
pub trait Work: Copy + Send + Sync + PartialOrd + Sub<Output = Self> {
    const ZERO: Self;
    /// numpy computes this type's `hypot` in float32.
    const SINGLE: bool;
    /// Channel magnitudes closer than this (relative) may compare either way in numpy.
    const TIE_RTOL: Self;
    fn to_f64(self) -> f64;
    fn mul(self, other: Self) -> Self;
    /// `hypot` in this precision, used only to pick the strongest channel.
    fn magnitude(gr: Self, gc: Self) -> Self;
}

impl Work for f64 {
    const ZERO: Self = 0.0;
    const SINGLE: bool = false;
    const TIE_RTOL: Self = 1e-13;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn magnitude(gr: Self, gc: Self) -> Self {
        (gr * gr + gc * gc).sqrt()
    }
}

impl Work for f32 {
    const ZERO: Self = 0.0;
    const SINGLE: bool = true;
    const TIE_RTOL: Self = 1e-5;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn magnitude(gr: Self, gc: Self) -> Self {
        let (r, c) = (gr as f64, gc as f64);
        (r * r + c * c).sqrt() as f32
    }
}

/// An input pixel type and the precision skimage promotes it to.
pub trait Pixel: Copy + Send + Sync {
    type W: Work;
    /// Gradients of this type (without `transform_sqrt`) are integers in [-255, 255].
    const BYTE: bool = false;
    fn work(self) -> Self::W;
    /// `np.sqrt` of the promoted value (`transform_sqrt`).
    fn work_sqrt(self) -> Self::W;
    /// Finite and, when `transform_sqrt`, non-negative.
    fn acceptable(self, transform_sqrt: bool) -> bool;
}

impl Pixel for u8 {
    type W = f64;
    const BYTE: bool = true;
    #[inline(always)]
    fn work(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn work_sqrt(self) -> f64 {
        (self as f64).sqrt()
    }
    #[inline(always)]
    fn acceptable(self, _: bool) -> bool {
        true
    }
}

impl Pixel for f64 {
    type W = f64;
    #[inline(always)]
    fn work(self) -> f64 {
        self
    }
    #[inline(always)]
    fn work_sqrt(self) -> f64 {
        self.sqrt()
    }
    #[inline(always)]
    fn acceptable(self, transform_sqrt: bool) -> bool {
        self.is_finite() && !(transform_sqrt && self < 0.0)
    }
}

impl Pixel for f32 {
    type W = f32;
    #[inline(always)]
    fn work(self) -> f32 {
        self
    }
    #[inline(always)]
    fn work_sqrt(self) -> f32 {
        self.sqrt()
    }
    #[inline(always)]
    fn acceptable(self, transform_sqrt: bool) -> bool {
        self.is_finite() && !(transform_sqrt && self < 0.0)
    }
}

/// HOG of one image into `out` (length [`HogShape::len`]), skimage's layout, float64.
///
/// `image` is C-ordered `rows x cols` (`channels == 1`) or `rows x cols x channels`.
/// `oracle` settles the rare values that sit on a decision edge (see [`Oracle`]).
pub fn hog_into<T: Pixel>(
    image: &[T],
    rows: usize,
    cols: usize,
    channels: usize,
    p: &HogParams,
    oracle: &dyn Oracle,
    out: &mut [f64],
) -> Result<()> {
    let shape = hog_shape(rows, cols, p)?;
    if channels == 0 {
        return value_err!("the image must have at least one channel");
    }
    if image.len() != rows * cols * channels {
        return value_err!(
            "image buffer holds {} values, expected {rows} x {cols} x {channels}",
            image.len()
        );
    }
    if out.len() != shape.len(p) {
        return value_err!("output holds {} values, expected {}", out.len(), shape.len(p));
    }
    if let Some(bad) = image.iter().position(|v| !v.acceptable(p.transform_sqrt)) {
        let (r, c) = ((bad / channels) / cols, (bad / channels) % cols);
        return if p.transform_sqrt {
            value_err!(
                "image must be finite and non-negative with transform_sqrt=True \
                 (pixel at row {r}, col {c})"
            )
        } else {
            value_err!("image must contain only finite values (pixel at row {r}, col {c})")
        };
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { describe_avx2(image, rows, cols, channels, shape, p, oracle, out) };
    }
    describe(image, rows, cols, channels, shape, p, oracle, out)
}

/// [`describe`] compiled for AVX2: the row loops run 4 (f64) or 8 (f32) lanes wide.
/// Only the instruction set changes, not the arithmetic (no fused multiply-adds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn describe_avx2<T: Pixel>(
    image: &[T],
    rows: usize,
    cols: usize,
    channels: usize,
    shape: HogShape,
    p: &HogParams,
    oracle: &dyn Oracle,
    out: &mut [f64],
) -> Result<()> {
    describe(image, rows, cols, channels, shape, p, oracle, out)
}

/// Cell histograms and normalised blocks of a validated image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn describe<T: Pixel>(
    image: &[T],
    rows: usize,
    cols: usize,
    channels: usize,
    shape: HogShape,
    p: &HogParams,
    oracle: &dyn Oracle,
    out: &mut [f64],
) -> Result<()> {
    let hist = if p.transform_sqrt {
        let plane: Vec<T::W> = image.iter().map(|v| v.work_sqrt()).collect();
        let grid = Grid { image: &plane, rows, cols, channels, work: |v: T::W| v };
        cell_histograms(&grid, shape.n_cells, p, None, oracle)?
    } else {
        let table = if T::BYTE { byte_gradient_bins(p.orientations) } else { None };
        let grid = Grid { image, rows, cols, channels, work: |v: T| v.work() };
        cell_histograms(&grid, shape.n_cells, p, table.as_deref().map(|t| &t[..]), oracle)?
    };
    normalize_blocks(&hist, shape, p, out);
    Ok(())
}

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

/// Orientations closer than this to a boundary may fall on either side depending on
/// the arctangent's last bits (a few ulp of 180 = 1e-13 degree): ask the oracle.
const ON_BOUNDARY_DEG: f64 = 1e-9;

/// The arctangent polynomial's error bound (Abramowitz & Stegun 4.4.48, |e| <= 1e-5 rad
/// = 5.8e-4 degree) with a 3x margin: outside this distance from a boundary the
/// approximate angle is on the same side as numpy's.
const GUARD_DEG: f64 = 2e-3;
const RAD_TO_DEG: f64 = 180.0 / std::f64::consts::PI;

/// skimage's orientation of a gradient: `np.rad2deg(np.arctan2(gy, gx)) % 180`.
#[inline]
fn exact_orientation(gy: f64, gx: f64) -> f64 {
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
fn approx_orientation(gy: f32, gx: f32) -> f32 {
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
struct Bins {
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
const NO_BIN: u32 = 0x7fff_ffff;
/// Flag on a bin: the orientation is within [`ON_BOUNDARY_DEG`] of a boundary.
const ON_BOUNDARY: u32 = 0x8000_0000;
/// Placeholder in [`Bins::bin_row`]: the fast test was not conclusive.
const UNSETTLED: u32 = 0x7fff_fffe;

impl Bins {
    fn new(n: usize) -> Self {
        let bounds: Vec<f64> = (0..=n).map(|i| (180.0 / n as f64) * i as f64).collect();
        let per_degree = n as f64 / 180.0;
        let guard_bins = GUARD_DEG * per_degree + 1e-9;
        let mut bins = Bins { n, bounds, per_degree, guard_bins, lattice: [NO_BIN; 4] };
        bins.lattice = [0.0, 45.0, 90.0, 135.0].map(|a| bins.exact_bin(a));
        bins
    }

    /// skimage's test `end <= orientation < start`, scanning like its per-bin loop would.
    fn exact_bin(&self, orientation: f64) -> u32 {
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
    fn bin(&self, gy: f64, gx: f64) -> u32 {
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
    fn bin_row(&self, gx: &[f64], gy: &[f64], mag: &mut [f64], bin: &mut [u32]) {
        let n = gx.len();
        let (gx, gy, mag, bin) = (&gx[..n], &gy[..n], &mut mag[..n], &mut bin[..n]);
        for i in 0..n {
            mag[i] = (gx[i] * gx[i] + gy[i] * gy[i]).sqrt();
        }
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
    fn table_row(&self, gx: &[f64], gy: &[f64], mag: &mut [f64], bin: &mut [u32]) {
        let n = gx.len();
        let (gx, gy, mag, bin) = (&gx[..n], &gy[..n], &mut mag[..n], &mut bin[..n]);
        for i in 0..n {
            mag[i] = (gx[i] * gx[i] + gy[i] * gy[i]).sqrt();
        }
        // Whole numbers below 2^31 read from the mantissa of x + 2^52: vectorises.
        for i in 0..n {
            let at = (gy[i] + 255.0) * BYTE_SIDE as f64 + (gx[i] + 255.0);
            bin[i] = (at + 4_503_599_627_370_496.0).to_bits() as u32;
        }
    }

    /// [`Bins::exact_bin`], flagged with [`ON_BOUNDARY`] when a boundary is too close.
    fn checked_bin(&self, orientation: f64) -> u32 {
        let k = self.bounds.partition_point(|&b| b <= orientation);
        let near = |i: usize| i < self.bounds.len() && (orientation - self.bounds[i]).abs() < ON_BOUNDARY_DEG;
        let flag = if (k > 0 && near(k - 1)) || near(k) || orientation.is_nan() { ON_BOUNDARY } else { 0 };
        self.exact_bin(orientation) | flag
    }
}

/// Entries of a byte-gradient table that are not bins.
const TABLE_ZERO: u8 = 255;
const TABLE_SLOW: u8 = 254;
const BYTE_SIDE: usize = 511;

/// Bin of every integer gradient in [-255, 255]^2, the gradients of a byte image.
///
/// One byte per gradient (255: zero gradient, 254: take the slow path), 261 KB per
/// orientation count, built once per process with the same tests as [`Bins::bin_row`]
/// and shared by all threads. None for more than 253 orientations.
fn byte_gradient_bins(orientations: usize) -> Option<Arc<Vec<u8>>> {
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

/// The image as skimage's gradient sees it: pixels promoted to `W` by `work`.
struct Grid<'a, V, F> {
    image: &'a [V],
    rows: usize,
    cols: usize,
    channels: usize,
    work: F,
}

/// Channel choices that numpy must confirm: (row, col) -> channel.
type Overrides = HashMap<(usize, usize), usize>;

/// A pixel whose strongest channel is a near tie, with every channel's gradient.
struct NearTie {
    y: usize,
    x: usize,
    chosen: usize,
    gr: Vec<f64>,
    gc: Vec<f64>,
}

impl<V: Copy, W: Work, F: Fn(V) -> W> Grid<'_, V, F> {
    /// Central-difference gradient of row `y` for columns `0..gx.len()` (zero on the
    /// image border), taken from the channel with the largest magnitude (the first on
    /// ties, as `np.argmax`). Near ties go to `ties`; `overrides` replaces choices.
    #[inline(always)]
    fn gradient_row(
        &self,
        y: usize,
        gx: &mut [f64],
        gy: &mut [f64],
        overrides: &Overrides,
        mut ties: Option<&mut Vec<NearTie>>,
    ) {
        let (rows, cols, channels) = (self.rows, self.cols, self.channels);
        let work = &self.work;
        let image = self.image;
        let width = gx.len();
        let stride = cols * channels;
        let row = &image[y * stride..(y + 1) * stride];
        let interior_y = y > 0 && y + 1 < rows;
        let (up, down) = if interior_y {
            (&image[(y - 1) * stride..y * stride], &image[(y + 1) * stride..(y + 2) * stride])
        } else {
            (row, row)
        };
        if channels == 1 {
            // Interior columns without per-pixel branches (so the loop vectorises).
            gx.iter_mut().for_each(|g| *g = 0.0);
            let inner = width.min(cols.saturating_sub(1));
            if inner > 1 {
                let (left, right) = (&row[..inner - 1], &row[2..inner + 1]);
                for ((g, &l), &r) in gx[1..inner].iter_mut().zip(left).zip(right) {
                    *g = (work(r) - work(l)).to_f64();
                }
            }
            if interior_y {
                for ((g, &u), &d) in gy.iter_mut().zip(&up[..width]).zip(&down[..width]) {
                    *g = (work(d) - work(u)).to_f64();
                }
            } else {
                gy.iter_mut().for_each(|g| *g = 0.0);
            }
            return;
        }
        let channel_gradient = |x: usize, ch: usize| {
            let i = x * channels + ch;
            let gc = if x > 0 && x + 1 < cols { work(row[i + channels]) - work(row[i - channels]) } else { W::ZERO };
            let gr = if interior_y { work(down[i]) - work(up[i]) } else { W::ZERO };
            (gr, gc)
        };
        for x in 0..width {
            let mut best = 0;
            let mut best_g = channel_gradient(x, 0);
            let mut best_mag = W::magnitude(best_g.0, best_g.1);
            for ch in 1..channels {
                let g = channel_gradient(x, ch);
                let m = W::magnitude(g.0, g.1);
                if m > best_mag {
                    best = ch;
                    best_g = g;
                    best_mag = m;
                }
            }
            if let Some(ties) = ties.as_deref_mut() {
                // Another channel with a different gradient and (almost) the same
                // magnitude: numpy's hypot decides which comes first.
                let floor = best_mag - best_mag.mul(W::TIE_RTOL);
                let near_tie = (0..channels).any(|ch| {
                    let g = channel_gradient(x, ch);
                    ch != best && g != best_g && W::magnitude(g.0, g.1) >= floor
                });
                if near_tie {
                    let (gr, gc) = (0..channels)
                        .map(|ch| {
                            let g = channel_gradient(x, ch);
                            (g.0.to_f64(), g.1.to_f64())
                        })
                        .unzip();
                    ties.push(NearTie { y, x, chosen: best, gr, gc });
                }
            }
            if !overrides.is_empty() {
                if let Some(&ch) = overrides.get(&(y, x)) {
                    best_g = channel_gradient(x, ch);
                }
            }
            gy[x] = best_g.0.to_f64();
            gx[x] = best_g.1.to_f64();
        }
    }
}

/// Per-cell orientation histograms as skimage's `hog_histograms` fills them.
///
/// Returns `n_cells.0 x n_cells.1 x orientations` cell values widened to f64.
#[inline(always)]
///
/// `table` ([`byte_gradient_bins`]) replaces the angle computation for byte images.
fn cell_histograms<V: Copy, W: Work, F: Fn(V) -> W>(
    grid: &Grid<'_, V, F>,
    n_cells: (usize, usize),
    p: &HogParams,
    table: Option<&[u8]>,
    oracle: &dyn Oracle,
) -> Result<Vec<f64>> {
    let n = p.orientations;
    let bins = Bins::new(n);
    let (ncr, ncc) = n_cells;
    let (cr, cc) = p.cell;
    let mut hist = vec![0f32; ncr * ncc * n];
    let width = ncc * cc;
    let mut gx = vec![0f64; width];
    let mut gy = vec![0f64; width];
    let mut bin = vec![0u32; width];
    let mut mag = vec![0f64; width];
    let no_overrides = Overrides::new();
    let mut ties = Vec::new();
    // Cells holding a pixel whose bin or channel numpy must settle.
    let mut unsettled = BTreeSet::new();
    for yi in 0..ncr {
        let cell_row = &mut hist[yi * ncc * n..(yi + 1) * ncc * n];
        for y in yi * cr..(yi + 1) * cr {
            grid.gradient_row(y, &mut gx, &mut gy, &no_overrides, Some(&mut ties));
            match table {
                Some(_) => bins.table_row(&gx, &gy, &mut mag, &mut bin),
                None => bins.bin_row(&gx, &gy, &mut mag, &mut bin),
            }
            for xi in 0..ncc {
                let h = &mut cell_row[xi * n..(xi + 1) * n];
                for x in xi * cc..(xi + 1) * cc {
                    let mut b = match table {
                        // `bin` holds table positions (see `bin_row_from_table`).
                        Some(table) => match table[bin[x] as usize] {
                            TABLE_ZERO => NO_BIN,
                            TABLE_SLOW => UNSETTLED,
                            k => k as u32,
                        },
                        None => bin[x],
                    };
                    if b >= UNSETTLED {
                        if b == NO_BIN {
                            continue;
                        }
                        b = bins.bin(gy[x], gx[x]);
                        if b & ON_BOUNDARY != 0 {
                            b &= !ON_BOUNDARY;
                            unsettled.insert((yi, xi));
                        }
                        if b == NO_BIN {
                            continue;
                        }
                    }
                    // skimage: `float total; total += magnitude` (double add, float store).
                    let t = &mut h[b as usize];
                    *t = (*t as f64 + mag[x]) as f32;
                }
            }
        }
    }
    let overrides = settle_channels::<W>(&ties, oracle)?;
    unsettled.extend(overrides.keys().map(|&(y, x)| (y / cr, x / cc)));
    if !unsettled.is_empty() {
        resum_cells(&mut hist, &unsettled, grid, n_cells, p, &bins, &overrides, oracle)?;
    }
    // skimage's cell value: `total / (cell_rows * cell_columns)`, a float32 division.
    let area = (cr * cc) as f32;
    Ok(hist.into_iter().map(|t| f64::from(t / area)).collect())
}

/// numpy's channel choice for near ties, where it differs from ours.
fn settle_channels<W: Work>(ties: &[NearTie], oracle: &dyn Oracle) -> Result<Overrides> {
    let mut overrides = Overrides::new();
    if ties.is_empty() {
        return Ok(overrides);
    }
    let gr: Vec<f64> = ties.iter().flat_map(|t| t.gr.iter().copied()).collect();
    let gc: Vec<f64> = ties.iter().flat_map(|t| t.gc.iter().copied()).collect();
    let magnitudes = oracle.magnitudes(&gr, &gc, W::SINGLE)?;
    if magnitudes.len() != gr.len() {
        return Err(FeatError::Internal("oracle returned a wrong number of magnitudes".into()));
    }
    let mut at = 0;
    for t in ties {
        let m = &magnitudes[at..at + t.gr.len()];
        at += t.gr.len();
        // np.argmax: the first maximum.
        let first_max = (1..m.len()).fold(0, |best, ch| if m[ch] > m[best] { ch } else { best });
        if first_max != t.chosen {
            overrides.insert((t.y, t.x), first_max);
        }
    }
    Ok(overrides)
}

/// Sum the given cells again from scratch with numpy's decisions for their edge cases.
///
/// Summing from zero rather than patching keeps skimage's float32 addition order.
#[allow(clippy::too_many_arguments)]
fn resum_cells<V: Copy, W: Work, F: Fn(V) -> W>(
    hist: &mut [f32],
    cells: &BTreeSet<(usize, usize)>,
    grid: &Grid<'_, V, F>,
    n_cells: (usize, usize),
    p: &HogParams,
    bins: &Bins,
    overrides: &Overrides,
    oracle: &dyn Oracle,
) -> Result<()> {
    let n = p.orientations;
    let (cr, cc) = p.cell;
    let ncc = n_cells.1;
    let width = ncc * cc;
    let (mut gx, mut gy) = (vec![0f64; width], vec![0f64; width]);
    // Every pixel of every cell, in skimage's order: (cell, magnitude, bin).
    let mut pixels: Vec<((usize, usize), f64, u32)> = Vec::new();
    let mut edge_pixels = Vec::new();
    let (mut edge_gy, mut edge_gx) = (Vec::new(), Vec::new());
    for &(yi, xi) in cells {
        for y in yi * cr..(yi + 1) * cr {
            grid.gradient_row(y, &mut gx, &mut gy, overrides, None);
            for x in xi * cc..(xi + 1) * cc {
                let m = (gx[x] * gx[x] + gy[x] * gy[x]).sqrt();
                let b = if m == 0.0 { NO_BIN } else { bins.bin(gy[x], gx[x]) };
                if b != NO_BIN && b & ON_BOUNDARY != 0 {
                    edge_pixels.push(pixels.len());
                    edge_gy.push(gy[x]);
                    edge_gx.push(gx[x]);
                }
                pixels.push(((yi, xi), m, b & !ON_BOUNDARY));
            }
        }
    }
    if !edge_pixels.is_empty() {
        let decided = oracle.orientations(&edge_gy, &edge_gx)?;
        if decided.len() != edge_pixels.len() {
            return Err(FeatError::Internal("oracle returned a wrong number of orientations".into()));
        }
        for (&i, &o) in edge_pixels.iter().zip(&decided) {
            pixels[i].2 = bins.exact_bin(o);
        }
    }
    for &(yi, xi) in cells {
        hist[(yi * ncc + xi) * n..(yi * ncc + xi + 1) * n].iter_mut().for_each(|t| *t = 0.0);
    }
    for ((yi, xi), m, b) in pixels {
        if b != NO_BIN {
            let t = &mut hist[(yi * ncc + xi) * n + b as usize];
            *t = (*t as f64 + m) as f32;
        }
    }
    Ok(())
}

/// skimage's `_hog_normalize_block` over every block, written in its output layout.
///
/// A block's L1 / L2 sum is the sum of its cells' sums, computed once per cell rather
/// than once per block; divisions become one reciprocal per block. Both change only the
/// last bits (numpy itself sums pairwise).
#[inline(always)]
fn normalize_blocks(hist: &[f64], shape: HogShape, p: &HogParams, out: &mut [f64]) {
    const EPS: f64 = 1e-5;
    let n = p.orientations;
    let (br, bc) = p.block;
    let ncc = shape.n_cells.1;
    let block_len = br * bc * n;
    let cell_sums: Vec<f64> = match p.norm {
        BlockNorm::L1 | BlockNorm::L1Sqrt => hist.chunks_exact(n).map(|h| sum_of(h, f64::abs)).collect(),
        BlockNorm::L2 | BlockNorm::L2Hys => hist.chunks_exact(n).map(|h| sum_of(h, |v| v * v)).collect(),
    };
    let mut at = 0;
    for r in 0..shape.n_blocks.0 {
        for c in 0..shape.n_blocks.1 {
            let dst = &mut out[at..at + block_len];
            at += block_len;
            let mut total = 0.0;
            for i in 0..br {
                let src = (r + i) * ncc * n + c * n;
                dst[i * bc * n..(i + 1) * bc * n].copy_from_slice(&hist[src..src + bc * n]);
                total += cell_sums[(r + i) * ncc + c..(r + i) * ncc + c + bc].iter().sum::<f64>();
            }
            match p.norm {
                BlockNorm::L1 => {
                    let inv = 1.0 / (total + EPS);
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
                BlockNorm::L1Sqrt => {
                    let inv = 1.0 / (total + EPS);
                    dst.iter_mut().for_each(|v| *v = (*v * inv).sqrt());
                }
                BlockNorm::L2 => {
                    let inv = 1.0 / (total + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
                BlockNorm::L2Hys => {
                    let inv = 1.0 / (total + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v = (*v * inv).min(0.2));
                    let inv = 1.0 / (sum_of(dst, |v| v * v) + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v *= inv);
                }
            }
        }
    }
}

/// `sum(f(v))` with four independent running totals (no serial dependency chain).
#[inline(always)]
fn sum_of(values: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = values.chunks_exact(4);
    for ch in &mut chunks {
        for j in 0..4 {
            acc[j] += f(ch[j]);
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: usize) -> HogParams {
        HogParams { orientations: n, cell: (8, 8), block: (2, 2), norm: BlockNorm::L2Hys, transform_sqrt: false }
    }

    #[test]
    fn approximate_angle_is_within_guard() {
        let mut worst = 0f64;
        for i in -300..=300 {
            for j in -300..=300 {
                let (gy, gx) = (i as f64 * 0.37, j as f64 * 1.13);
                if gy == 0.0 && gx == 0.0 {
                    continue;
                }
                let exact = gy.atan2(gx).to_degrees().rem_euclid(180.0);
                let approx = approx_orientation(gy as f32, gx as f32) as f64;
                // Compare on the circle of orientations (0 == 180).
                let d = (exact - approx).abs();
                worst = worst.max(d.min(180.0 - d));
            }
        }
        assert!(worst < GUARD_DEG / 2.0, "worst error {worst} degree");
    }

    #[test]
    fn fast_bins_equal_exact_bins_on_integer_gradients() {
        for n in [1, 2, 4, 7, 8, 9, 12, 36] {
            let bins = Bins::new(n);
            for gy in -255..=255 {
                for gx in -255..=255 {
                    if gy == 0 && gx == 0 {
                        continue;
                    }
                    let (gy, gx) = (gy as f64, gx as f64);
                    assert_eq!(
                        bins.bin(gy, gx),
                        bins.exact_bin(exact_orientation(gy, gx)),
                        "n={n} gy={gy} gx={gx}"
                    );
                }
            }
        }
    }

    #[test]
    fn byte_table_equals_the_computed_bins() {
        for n in [1, 3, 9, 16, 253] {
            let bins = Bins::new(n);
            let table = byte_gradient_bins(n).unwrap();
            for gy in -255..=255 {
                for gx in -255..=255 {
                    let (gy, gx) = (gy as f64, gx as f64);
                    let expected = if gy == 0.0 && gx == 0.0 { NO_BIN } else { bins.bin(gy, gx) };
                    let mut at = [0u32];
                    bins.table_row(&[gx], &[gy], &mut [0.0], &mut at);
                    let got = match table[at[0] as usize] {
                        TABLE_ZERO => NO_BIN,
                        TABLE_SLOW => bins.bin(gy, gx),
                        k => k as u32,
                    };
                    assert_eq!(got, expected, "n={n} gy={gy} gx={gx}");
                }
            }
        }
        assert!(byte_gradient_bins(254).is_none());
    }

    #[test]
    fn fast_row_bins_equal_exact_bins() {
        let bins = Bins::new(9);
        let gx: Vec<f64> = (0..2000).map(|i| ((i * 7919) % 1013) as f64 * 0.37 - 180.0).collect();
        let gy: Vec<f64> = (0..2000).map(|i| ((i * 104_729) % 997) as f64 * 0.41 - 200.0).collect();
        let (mut mag, mut bin) = (vec![0.0; 2000], vec![0u32; 2000]);
        bins.bin_row(&gx, &gy, &mut mag, &mut bin);
        for i in 0..2000 {
            let expected = bins.exact_bin(exact_orientation(gy[i], gx[i]));
            let got = if bin[i] == UNSETTLED { bins.bin(gy[i], gx[i]) & !ON_BOUNDARY } else { bin[i] };
            assert_eq!(got, expected, "gy={} gx={}", gy[i], gx[i]);
        }
    }

    /// An oracle that puts every boundary gradient at a fixed angle and counts calls.
    struct FixedOracle(f64, std::sync::atomic::AtomicUsize);

    impl Oracle for FixedOracle {
        fn orientations(&self, gy: &[f64], _: &[f64]) -> Result<Vec<f64>> {
            self.1.fetch_add(gy.len(), std::sync::atomic::Ordering::Relaxed);
            Ok(vec![self.0; gy.len()])
        }
        fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>> {
            Libm.magnitudes(gr, gc, single)
        }
    }

    /// A 16 x 16 image whose pixel (4, 4) has the gradient (sqrt(3) - 3, 1 - sqrt(3)) under
    /// transform_sqrt: 60 degrees in exact arithmetic, a boundary for 9 orientations.
    fn sixty_degree_image() -> Vec<f64> {
        let mut img = vec![0.0f64; 16 * 16];
        img[3 * 16 + 4] = 9.0; // up
        img[5 * 16 + 4] = 3.0; // down
        img[4 * 16 + 3] = 3.0; // left
        img[4 * 16 + 5] = 1.0; // right
        img
    }

    #[test]
    fn the_oracle_decides_gradients_on_a_boundary() {
        let mut p = params(9);
        p.block = (1, 1);
        p.norm = BlockNorm::L1;
        p.transform_sqrt = true;
        let img = sixty_degree_image();
        let mut out = vec![0.0; 4 * 9];
        for (angle, bin) in [(59.0, 2), (61.0, 3)] {
            let oracle = FixedOracle(angle, Default::default());
            hog_into(&img, 16, 16, 1, &p, &oracle, &mut out).unwrap();
            assert_eq!(oracle.1.load(std::sync::atomic::Ordering::Relaxed), 1);
            // Cell (0, 0) holds the pixel; its other gradients are axis-aligned (bins 0, 4).
            let cell = &out[..9];
            assert!(cell[bin] > 0.0, "angle {angle}: {cell:?}");
            assert_eq!(cell[5 - bin], 0.0, "angle {angle}: {cell:?}");
        }
    }

    /// An oracle whose hypot prefers the last of equal channels.
    struct LastChannelOracle;

    impl Oracle for LastChannelOracle {
        fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
            Libm.orientations(gy, gx)
        }
        fn magnitudes(&self, gr: &[f64], _: &[f64], _: bool) -> Result<Vec<f64>> {
            // Pixels come with 2 channels each: make the second one win.
            Ok((0..gr.len()).map(|i| (i % 2) as f64).collect())
        }
    }

    #[test]
    fn the_oracle_decides_channel_ties() {
        // Channel 0 has a vertical edge, channel 1 a horizontal one of the same strength.
        let mut img = vec![0u8; 16 * 16 * 2];
        for y in 0..16 {
            for x in 0..16 {
                img[(y * 16 + x) * 2] = if x >= 8 { 100 } else { 0 };
                img[(y * 16 + x) * 2 + 1] = if y >= 8 { 100 } else { 0 };
            }
        }
        let mut p = params(4);
        p.block = (1, 1);
        p.norm = BlockNorm::L1;
        let mut numpy_like = vec![0.0; 4 * 4];
        let mut last = vec![0.0; 4 * 4];
        hog_into(&img, 16, 16, 2, &p, &Libm, &mut numpy_like).unwrap();
        hog_into(&img, 16, 16, 2, &p, &LastChannelOracle, &mut last).unwrap();
        // Pixel (7, 7) and its neighbours on both edges tie: the first channel (0 degrees,
        // bin 0) wins with Libm, the second (90 degrees, bin 2) with the other oracle.
        assert!(numpy_like[0] > last[0]);
        assert!(numpy_like[2] < last[2]);
    }

    #[test]
    fn orientation_modulo_follows_numpy() {
        assert_eq!(exact_orientation(0.0, -1.0), 0.0);
        assert_eq!(exact_orientation(-0.0, -1.0), 0.0);
        assert_eq!(exact_orientation(1.0, 0.0), 90.0);
        assert_eq!(exact_orientation(-1.0, 0.0), 90.0);
        // A tiny negative angle rounds to 180 after the shift: outside every bin.
        let o = exact_orientation(-1e-300, 1.0);
        assert_eq!(o, 180.0);
        assert_eq!(Bins::new(9).exact_bin(o), NO_BIN);
    }

    #[test]
    fn too_small_image_is_a_value_error() {
        let e = hog_shape(15, 40, &params(9)).unwrap_err();
        assert!(matches!(e, FeatError::Value(ref m) if m.contains("at least: 16 rows and 16 cols")));
        assert!(hog_shape(16, 16, &params(9)).is_ok());
        assert!(hog_shape(64, 64, &params(0)).is_err());
    }

    #[test]
    fn vertical_edge_votes_into_the_zero_degree_bin() {
        // Columns 0..8 dark, 8..16 bright: horizontal gradient of 200 at columns 7 and 8.
        let img: Vec<u8> = (0..16 * 16).map(|i| if i % 16 >= 8 { 200 } else { 0 }).collect();
        let mut p = params(9);
        p.block = (1, 1);
        p.norm = BlockNorm::L1;
        let shape = hog_shape(16, 16, &p).unwrap();
        let mut out = vec![0.0; shape.len(&p)];
        hog_into(&img, 16, 16, 1, &p, &Libm, &mut out).unwrap();
        for (cell, v) in out.chunks(9).enumerate() {
            assert!(v[0] > 0.99, "cell {cell}: {v:?}");
            assert!(v[1..].iter().all(|&x| x == 0.0), "cell {cell}: {v:?}");
        }
    }

    #[test]
    fn non_finite_pixels_are_rejected() {
        let mut img = vec![1.0f64; 16 * 16];
        img[17] = f64::NAN;
        let p = params(9);
        let mut out = vec![0.0; 36];
        let e = hog_into(&img, 16, 16, 1, &p, &Libm, &mut out).unwrap_err();
        assert!(matches!(e, FeatError::Value(ref m) if m.contains("row 1, col 1")));
    }
}
