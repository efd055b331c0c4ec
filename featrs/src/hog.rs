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
//! where the angle is exact) takes the exact path `rad2deg(atan2(gy, gx)) % 180`.
use std::ops::Sub;

use crate::error::Result;
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
    fn to_f64(self) -> f64;
    /// `np.hypot` in this precision, used only to pick the strongest channel.
    fn magnitude(gr: Self, gc: Self) -> Self;
}

impl Work for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn magnitude(gr: Self, gc: Self) -> Self {
        (gr * gr + gc * gc).sqrt()
    }
}

impl Work for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
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
    fn work(self) -> Self::W;
    /// `np.sqrt` of the promoted value (`transform_sqrt`).
    fn work_sqrt(self) -> Self::W;
    /// Finite and, when `transform_sqrt`, non-negative.
    fn acceptable(self, transform_sqrt: bool) -> bool;
}

impl Pixel for u8 {
    type W = f64;
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
pub fn hog_into<T: Pixel>(
    image: &[T],
    rows: usize,
    cols: usize,
    channels: usize,
    p: &HogParams,
    oracle: &dyn OrientationOracle,
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
    let hist = if p.transform_sqrt {
        let plane: Vec<T::W> = image.iter().map(|v| v.work_sqrt()).collect();
        cell_histograms(&plane, rows, cols, channels, shape.n_cells, p, oracle, |v| v)?
    } else {
        cell_histograms(image, rows, cols, channels, shape.n_cells, p, oracle, |v: T| v.work())?
    };
    normalize_blocks(&hist, shape, p, out);
    Ok(())
}

/// Decides the orientation of gradients that lie on a bin boundary up to rounding.
///
/// skimage takes orientations from numpy's `arctan2`, whose last bits depend on numpy's
/// build and the CPU (numpy has SIMD implementations), and some gradients sit exactly on
/// a boundary in exact arithmetic (with `transform_sqrt`, `atan2(sqrt(3), 1)` is 60
/// degrees). For those few the Python binding asks numpy itself; everything else is
/// decided here.
pub trait OrientationOracle: Sync {
    /// `np.rad2deg(np.arctan2(gy, gx)) % 180` for each pair.
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>>;
}

/// The orientation from the C library's `atan2` (pure-Rust callers and tests).
pub struct LibmOrientation;

impl OrientationOracle for LibmOrientation {
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
        Ok(gy.iter().zip(gx).map(|(&y, &x)| exact_orientation(y, x)).collect())
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

/// Orientation in degrees, within [`GUARD_DEG`] of the true one; gradient not zero.
#[inline(always)]
fn approx_orientation(gy: f64, gx: f64) -> f64 {
    // Fold into the upper half plane: orientations are taken modulo 180 degrees.
    let (x, y) = if gy < 0.0 { (-gx, -gy) } else { (gx, gy) };
    let ax = x.abs();
    let steep = y > ax;
    let (num, den) = if steep { (ax, y) } else { (y, ax) };
    let r = num / den;
    let r2 = r * r;
    let a = r * (0.999_866_0 + r2 * (-0.330_299_5 + r2 * (0.180_141_0 + r2 * (-0.085_133_0 + r2 * 0.020_835_1))));
    let a = if steep { std::f64::consts::FRAC_PI_2 - a } else { a };
    let a = if x < 0.0 { std::f64::consts::PI - a } else { a };
    a * RAD_TO_DEG
}

/// Orientation bins: bin `i` holds orientations in `[bounds[i], bounds[i + 1])`.
struct Bins {
    n: usize,
    /// `(180 / n) * i` in f64, as skimage computes them, for i in 0..=n.
    bounds: Vec<f64>,
    per_degree: f64,
    /// Bins of the exact angles 0, 45, 90 and 135 degrees (axes and diagonals).
    lattice: [u32; 4],
}

/// Marks "no bin" (an orientation that rounds to 180 degrees, skimage drops it).
const NO_BIN: u32 = 0x7fff_ffff;
/// Flag on a bin: the orientation is within [`ON_BOUNDARY_DEG`] of a boundary.
const ON_BOUNDARY: u32 = 0x8000_0000;

impl Bins {
    fn new(n: usize) -> Self {
        let bounds: Vec<f64> = (0..=n).map(|i| (180.0 / n as f64) * i as f64).collect();
        let mut bins = Bins { n, bounds, per_degree: n as f64 / 180.0, lattice: [NO_BIN; 4] };
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

    #[inline(always)]
    fn bin(&self, gy: f64, gx: f64) -> u32 {
        if gy == 0.0 {
            return self.lattice[0];
        }
        if gx == 0.0 {
            return self.lattice[2];
        }
        if gx.abs() == gy.abs() {
            return if (gx > 0.0) == (gy > 0.0) { self.lattice[1] } else { self.lattice[3] };
        }
        let a = approx_orientation(gy, gx);
        let k = ((a * self.per_degree) as usize).min(self.n - 1);
        // Both comparisons are false for NaN (overflowed gradients): exact path.
        if a - GUARD_DEG >= self.bounds[k] && a + GUARD_DEG < self.bounds[k + 1] {
            k as u32
        } else {
            self.checked_bin(exact_orientation(gy, gx))
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

/// Per-cell orientation histograms as skimage's `hog_histograms` fills them.
///
/// Returns `n_cells.0 x n_cells.1 x orientations` cell values widened to f64.
#[allow(clippy::too_many_arguments)]
fn cell_histograms<V: Copy + Sync, W: Work>(
    image: &[V],
    rows: usize,
    cols: usize,
    channels: usize,
    n_cells: (usize, usize),
    p: &HogParams,
    oracle: &dyn OrientationOracle,
    work: impl Fn(V) -> W + Copy,
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
    let mut on_boundary = Vec::new();
    for yi in 0..ncr {
        let cell_row = &mut hist[yi * ncc * n..(yi + 1) * ncc * n];
        for y in yi * cr..(yi + 1) * cr {
            gradient_row(image, rows, cols, channels, y, work, &mut gx, &mut gy);
            for x in 0..width {
                mag[x] = (gx[x] * gx[x] + gy[x] * gy[x]).sqrt();
            }
            for x in 0..width {
                bin[x] = if mag[x] == 0.0 { NO_BIN } else { bins.bin(gy[x], gx[x]) };
            }
            for xi in 0..ncc {
                let h = &mut cell_row[xi * n..(xi + 1) * n];
                for x in xi * cc..(xi + 1) * cc {
                    let mut b = bin[x];
                    if b & ON_BOUNDARY != 0 {
                        b &= !ON_BOUNDARY;
                        on_boundary.push(BoundaryPixel { y, x, gy: gy[x], gx: gx[x], bin: b });
                    }
                    if b != NO_BIN {
                        // skimage: `float total; total += magnitude` (double add, float store).
                        let t = &mut h[b as usize];
                        *t = (*t as f64 + mag[x]) as f32;
                    }
                }
            }
        }
    }
    if !on_boundary.is_empty() {
        settle_boundary_pixels(&mut hist, &on_boundary, image, rows, cols, channels, p, &bins, oracle, work)?;
    }
    // skimage's cell value: `total / (cell_rows * cell_columns)`, a float32 division.
    let area = (cr * cc) as f32;
    Ok(hist.into_iter().map(|t| f64::from(t / area)).collect())
}

/// A pixel whose bin the oracle must confirm, with the bin it was given.
struct BoundaryPixel {
    y: usize,
    x: usize,
    gy: f64,
    gx: f64,
    bin: u32,
}

/// Ask the oracle about boundary pixels; re-add the cells where it disagrees.
///
/// A cell is summed again from scratch rather than patched, so its float32 sums see the
/// magnitudes in skimage's order.
#[allow(clippy::too_many_arguments)]
fn settle_boundary_pixels<V: Copy + Sync, W: Work>(
    hist: &mut [f32],
    pixels: &[BoundaryPixel],
    image: &[V],
    rows: usize,
    cols: usize,
    channels: usize,
    p: &HogParams,
    bins: &Bins,
    oracle: &dyn OrientationOracle,
    work: impl Fn(V) -> W + Copy,
) -> Result<()> {
    let gy: Vec<f64> = pixels.iter().map(|q| q.gy).collect();
    let gx: Vec<f64> = pixels.iter().map(|q| q.gx).collect();
    let decided = oracle.orientations(&gy, &gx)?;
    if decided.len() != pixels.len() {
        return Err(crate::error::FeatError::Internal("orientation oracle returned a wrong count".into()));
    }
    let mut fixed = std::collections::HashMap::new();
    let mut cells = std::collections::BTreeSet::new();
    for (q, &o) in pixels.iter().zip(&decided) {
        let b = bins.exact_bin(o);
        if b != q.bin {
            fixed.insert((q.y, q.x), b);
            cells.insert((q.y / p.cell.0, q.x / p.cell.1));
        }
    }
    let n = p.orientations;
    let (cr, cc) = p.cell;
    let ncc = cols / cc;
    let width = (cols / cc) * cc;
    let (mut gxr, mut gyr) = (vec![0f64; width], vec![0f64; width]);
    for (yi, xi) in cells {
        let h = &mut hist[(yi * ncc + xi) * n..(yi * ncc + xi + 1) * n];
        h.iter_mut().for_each(|t| *t = 0.0);
        for y in yi * cr..(yi + 1) * cr {
            gradient_row(image, rows, cols, channels, y, work, &mut gxr, &mut gyr);
            for x in xi * cc..(xi + 1) * cc {
                let m = (gxr[x] * gxr[x] + gyr[x] * gyr[x]).sqrt();
                if m == 0.0 {
                    continue;
                }
                let b = match fixed.get(&(y, x)) {
                    Some(&b) => b,
                    None => bins.bin(gyr[x], gxr[x]) & !ON_BOUNDARY,
                };
                if b != NO_BIN {
                    let t = &mut h[b as usize];
                    *t = (*t as f64 + m) as f32;
                }
            }
        }
    }
    Ok(())
}

/// Central-difference gradient of row `y` for columns `0..gx.len()` (zero on the image
/// border), taken from the channel with the largest magnitude (the first on ties).
#[allow(clippy::too_many_arguments)]
#[inline]
fn gradient_row<V: Copy, W: Work>(
    image: &[V],
    rows: usize,
    cols: usize,
    channels: usize,
    y: usize,
    work: impl Fn(V) -> W,
    gx: &mut [f64],
    gy: &mut [f64],
) {
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
        for x in 0..width {
            let gc = if x > 0 && x + 1 < cols { work(row[x + 1]) - work(row[x - 1]) } else { W::ZERO };
            let gr = if interior_y { work(down[x]) - work(up[x]) } else { W::ZERO };
            gx[x] = gc.to_f64();
            gy[x] = gr.to_f64();
        }
        return;
    }
    for x in 0..width {
        let mut best = (W::ZERO, W::ZERO);
        let mut best_mag = W::ZERO;
        for ch in 0..channels {
            let i = x * channels + ch;
            let gc = if x > 0 && x + 1 < cols {
                work(row[i + channels]) - work(row[i - channels])
            } else {
                W::ZERO
            };
            let gr = if interior_y { work(down[i]) - work(up[i]) } else { W::ZERO };
            let m = W::magnitude(gr, gc);
            // np.argmax keeps the first maximum.
            if ch == 0 || m > best_mag {
                best = (gr, gc);
                best_mag = m;
            }
        }
        gy[x] = best.0.to_f64();
        gx[x] = best.1.to_f64();
    }
}

/// skimage's `_hog_normalize_block` over every block, written in its output layout.
fn normalize_blocks(hist: &[f64], shape: HogShape, p: &HogParams, out: &mut [f64]) {
    const EPS: f64 = 1e-5;
    let n = p.orientations;
    let (br, bc) = p.block;
    let ncc = shape.n_cells.1;
    let block_len = br * bc * n;
    let mut at = 0;
    for r in 0..shape.n_blocks.0 {
        for c in 0..shape.n_blocks.1 {
            let dst = &mut out[at..at + block_len];
            at += block_len;
            for i in 0..br {
                let src = (r + i) * ncc * n + c * n;
                dst[i * bc * n..(i + 1) * bc * n].copy_from_slice(&hist[src..src + bc * n]);
            }
            match p.norm {
                BlockNorm::L1 => {
                    let s: f64 = dst.iter().map(|v| v.abs()).sum::<f64>() + EPS;
                    dst.iter_mut().for_each(|v| *v /= s);
                }
                BlockNorm::L1Sqrt => {
                    let s: f64 = dst.iter().map(|v| v.abs()).sum::<f64>() + EPS;
                    dst.iter_mut().for_each(|v| *v = (*v / s).sqrt());
                }
                BlockNorm::L2 => {
                    let s = (dst.iter().map(|v| v * v).sum::<f64>() + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v /= s);
                }
                BlockNorm::L2Hys => {
                    let s = (dst.iter().map(|v| v * v).sum::<f64>() + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v = (*v / s).min(0.2));
                    let s = (dst.iter().map(|v| v * v).sum::<f64>() + EPS * EPS).sqrt();
                    dst.iter_mut().for_each(|v| *v /= s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FeatError;

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
                let approx = approx_orientation(gy, gx);
                // Compare on the circle of orientations (0 == 180).
                let d = (exact - approx).abs();
                worst = worst.max(d.min(180.0 - d));
            }
        }
        assert!(worst < GUARD_DEG / 3.0, "worst error {worst} degree");
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
        hog_into(&img, 16, 16, 1, &p, &LibmOrientation, &mut out).unwrap();
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
        let e = hog_into(&img, 16, 16, 1, &p, &LibmOrientation, &mut out).unwrap_err();
        assert!(matches!(e, FeatError::Value(ref m) if m.contains("row 1, col 1")));
    }
}
