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
mod bins;
mod gradient;
mod histogram;
mod normalize;
mod oracle;
mod pixel;
#[cfg(test)]
mod tests;

use bins::byte_gradient_bins;
use gradient::Grid;
use histogram::cell_histograms;
use normalize::normalize_blocks;
pub use oracle::{Libm, Oracle};
pub use pixel::{Pixel, Work};

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

/// One image: C-ordered `rows x cols` (`channels == 1`) or `rows x cols x channels`.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a, T> {
    pub pixels: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub channels: usize,
}

impl<'a, T> Image<'a, T> {
    pub fn new(pixels: &'a [T], rows: usize, cols: usize, channels: usize) -> Self {
        Image { pixels, rows, cols, channels }
    }
}

/// HOG of one image into `out` (length [`HogShape::len`]), skimage's layout, float64.
///
/// `oracle` settles the rare values that sit on a decision edge (see [`Oracle`]).
pub fn hog_into<T: Pixel>(img: Image<'_, T>, p: &HogParams, oracle: &dyn Oracle, out: &mut [f64]) -> Result<()> {
    let shape = hog_shape(img.rows, img.cols, p)?;
    if out.len() != shape.len(p) {
        return value_err!("output holds {} values, expected {}", out.len(), shape.len(p));
    }
    run(&Job { img, shape, p, oracle, what: Output::Blocks }, out)
}

/// skimage's `orientation_histogram` (the cell values before block normalisation, what
/// `visualize=True` draws) into `out`: `n_cells_row x n_cells_col x orientations`.
pub fn hog_cells_into<T: Pixel>(img: Image<'_, T>, p: &HogParams, oracle: &dyn Oracle, out: &mut [f64]) -> Result<()> {
    let shape = hog_shape(img.rows, img.cols, p)?;
    let len = shape.n_cells.0 * shape.n_cells.1 * p.orientations;
    if out.len() != len {
        return value_err!("output holds {} values, expected {len}", out.len());
    }
    run(&Job { img, shape, p, oracle, what: Output::Cells }, out)
}

/// What [`describe`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Blocks,
    Cells,
}

/// An image whose parameters are checked, and what to describe of it.
struct Job<'a, T> {
    img: Image<'a, T>,
    shape: HogShape,
    p: &'a HogParams,
    oracle: &'a dyn Oracle,
    what: Output,
}

/// Check the pixels, then describe the image on the best SIMD path.
fn run<T: Pixel>(job: &Job<'_, T>, out: &mut [f64]) -> Result<()> {
    let Image { pixels, rows, cols, channels } = job.img;
    let p = job.p;
    if channels == 0 {
        return value_err!("the image must have at least one channel");
    }
    if pixels.len() != rows * cols * channels {
        return value_err!(
            "image buffer holds {} values, expected {rows} x {cols} x {channels}",
            pixels.len()
        );
    }
    if let Some(bad) = pixels.iter().position(|v| !v.acceptable(p.transform_sqrt)) {
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
    describe_simd(job, out)
}

crate::simd::multiversion! {
    /// [`describe`] compiled for the best instruction set: the row loops run 8 (f64) or
    /// 16 (f32) lanes wide with AVX-512, 4 or 8 with AVX2. Only the instruction set
    /// changes, not the arithmetic (no fused multiply-adds).
    fn describe_simd<T: Pixel>(job: &Job<'_, T>, out: &mut [f64]) -> Result<()> {
        avx512("avx512f,avx512bw") => describe,
        avx2("avx2") => describe,
        _ => describe,
    }
}

/// Cell histograms and normalised blocks of a validated image.
#[inline(always)]
fn describe<T: Pixel>(job: &Job<'_, T>, out: &mut [f64]) -> Result<()> {
    let Job { img: Image { pixels: image, rows, cols, channels }, shape, p, oracle, what } = *job;
    let hist = if p.transform_sqrt {
        let plane: Vec<T::W> = image.iter().map(|v| v.work_sqrt()).collect();
        let grid = Grid { image: &plane, rows, cols, channels, work: |v: T::W| v };
        cell_histograms(&grid, shape.n_cells, p, None, oracle)?
    } else {
        let table = if T::BYTE { byte_gradient_bins(p.orientations) } else { None };
        let grid = Grid { image, rows, cols, channels, work: |v: T| v.work() };
        cell_histograms(&grid, shape.n_cells, p, table.as_deref().map(|t| &t[..]), oracle)?
    };
    match what {
        Output::Blocks => normalize_blocks(&hist, shape, p, out),
        Output::Cells => out.copy_from_slice(&hist),
    }
    Ok(())
}
