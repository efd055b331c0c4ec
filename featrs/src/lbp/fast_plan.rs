//! The plan of the fast path ([`super::fast`]) for one operator and image size: how each
//! neighbour is sampled in a zero-padded float32 plane (never, on the pixel grid, or
//! bilinear with its nominal float32 weights and skimage's exact per-row and per-column
//! float64 weights for the re-check), and which flat neighbourhoods skimage sets.
use super::fast::{FAST_MAX_POINTS, LANES};
use super::{Lbp, Method};
use crate::error::Result;
use crate::value_err;

/// Per-column / per-row weights farther than this from the nominal one: use the exact path.
const WEIGHT_SPREAD: f64 = 1e-9;

/// How a neighbour is sampled, relative to the centre pixel, in a padded plane.
#[derive(Debug, Clone)]
pub(super) enum Sample {
    /// Every read falls outside the image: the value is 0.
    Zero,
    /// On the pixel grid: the value is the pixel at `(dr, dc)`.
    Pixel { dr: isize, dc: isize },
    /// Bilinear between rows `top`, `top + 1` ... as skimage computes it.
    Bilinear {
        top: isize,
        bottom: isize,
        left: isize,
        right: isize,
        /// Nominal weights for the float32 pass.
        wr: f32,
        wc: f32,
        /// skimage's exact `dr` per row and `dc` per column for the float64 re-check.
        dr: Vec<f64>,
        dc: Vec<f64>,
        /// skimage sets the bit wherever the four samples equal the centre (see [`flat_sets`]).
        flat_sets: bool,
    },
}

/// A bilinear neighbour for the float32 pass: plane offsets of its four samples from the
/// centre pixel, nominal weights, its bit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quad {
    pub(super) at: [isize; 4],
    pub(super) wr: f32,
    pub(super) wc: f32,
    pub(super) bit: u32,
    /// All ones when skimage sets the bit wherever the four samples equal the centre
    /// ([`flat_sets`]), so the AVX-512 block need not flag those; 0 otherwise.
    pub(super) flat_sets: u32,
}

/// An [`Lbp`] prepared for uint8 images of `rows x cols` in planes padded by `pad`.
#[derive(Debug, Clone)]
pub struct FastPlan {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) pad: usize,
    pub(super) samples: Vec<Sample>,
    /// Bits of the [`Sample::Zero`] neighbours: set exactly where the centre is 0.
    pub(super) zero_bits: u32,
    /// Plane offsets and bits of the [`Sample::Pixel`] neighbours.
    pub(super) pixels: Vec<(isize, u32)>,
    pub(super) quads: Vec<Quad>,
    /// Bits of the quads.
    pub(super) quad_bits: u32,
    /// Every quad's `flat_sets` is set.
    pub(super) all_flat_sets: bool,
}

impl FastPlan {
    /// Rows and columns of the images this plan is for.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// `cols` rounded up to whole blocks of columns.
    pub(super) fn padded_cols(&self) -> usize {
        self.cols.div_ceil(LANES) * LANES
    }

    /// Row length of the planes this plan reads: the padding on both sides, and on the
    /// right room for the last block of columns.
    pub fn width(&self) -> usize {
        plane_width(self.cols, self.pad)
    }

    /// Values of such a plane.
    pub fn plane_len(&self) -> usize {
        self.width() * (self.rows + 2 * self.pad)
    }
}

/// Row length of a plane for images `cols` wide padded by `pad`: room on the right for
/// the last block of columns.
pub fn plane_width(cols: usize, pad: usize) -> usize {
    cols.div_ceil(LANES) * LANES + 2 * pad
}

/// `floor(k + off) - k` and `ceil(k + off) - k` for every `k < n`, with skimage's
/// fractions `(k + off) - floor(k + off)`; None when the integer parts vary with `k`.
fn fractions(off: f64, n: usize) -> Option<(isize, isize, Vec<f64>)> {
    let (lo, hi) = (off.floor() as isize, off.ceil() as isize);
    let mut frac = Vec::with_capacity(n);
    for k in 0..n {
        let f = k as f64 + off;
        if f.floor() as isize - k as isize != lo || f.ceil() as isize - k as isize != hi {
            return None;
        }
        frac.push(f - f.floor());
    }
    Some((lo, hi, frac))
}

/// Whether skimage's interpolation of four equal pixels `v` is `>= v` for every `v` in
/// 1..=255 and every row and column weight (`dr`, `dc`): then a neighbour whose samples all
/// equal the centre has its bit set, as the float32 pass (difference exactly 0) says.
/// Such flat neighbours are most of the comparisons near zero on CT slices (59 %): the
/// AVX-512 block does not flag them for the float64 re-check. False when the weights
/// take too many distinct values to check cheaply (they are then re-checked).
fn flat_sets(dr: &[f64], dc: &[f64]) -> bool {
    let distinct = |v: &[f64]| {
        let mut bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        bits.into_iter().map(f64::from_bits).collect::<Vec<_>>()
    };
    let (dr, dc) = (distinct(dr), distinct(dc));
    if dr.len() * dc.len() > 4096 {
        return false;
    }
    (1..=255).all(|v| {
        let v = v as f64;
        dr.iter().all(|&dr| {
            dc.iter().all(|&dc| {
                // skimage's bilinear_interpolation with all four pixels v, operation for operation.
                let t = (1.0 - dc) * v + dc * v;
                (1.0 - dr) * t + dr * t - v >= 0.0
            })
        })
    })
}

/// The single value all of `v` are close to, or None.
fn nominal(v: &[f64]) -> Option<f64> {
    let first = *v.first()?;
    v.iter().all(|x| (x - first).abs() <= WEIGHT_SPREAD).then_some(first)
}

impl Lbp {
    /// Zero padding around images of `rows x cols` that covers every neighbour landing inside
    /// them (both paths plan with it).
    pub fn fast_pad(&self, rows: usize, cols: usize) -> usize {
        let inside = |off: f64, side: usize| off.abs() < side as f64;
        let reach = self
            .rp
            .iter()
            .zip(&self.cp)
            .filter(|(&r, &c)| inside(r, rows) && inside(c, cols))
            .map(|(r, c)| r.abs().max(c.abs()).ceil() as usize)
            .max()
            .unwrap_or(0);
        reach + 1
    }

    /// A plan for uint8 images of `rows x cols` in planes padded by `pad` (at least
    /// [`Lbp::fast_pad`]); None when this operator needs the exact path (`var`, more
    /// than [`FAST_MAX_POINTS`] points, offsets not rounded like skimage's).
    pub fn fast_plan(&self, rows: usize, cols: usize, pad: usize) -> Result<Option<FastPlan>> {
        if rows == 0 || cols == 0 {
            return value_err!("The parameter `image` cannot be an empty array");
        }
        if rows > super::MAX_SIDE || cols > super::MAX_SIDE {
            return value_err!("image sides must be at most {} pixels, got {rows} x {cols}", super::MAX_SIDE);
        }
        if self.method == Method::Var || self.p > FAST_MAX_POINTS || pad < self.fast_pad(rows, cols) {
            return Ok(None);
        }
        let mut samples = Vec::with_capacity(self.p);
        for (&rp, &cp) in self.rp.iter().zip(&self.cp) {
            if !(rp.abs() < rows as f64 && cp.abs() < cols as f64) {
                samples.push(Sample::Zero);
                continue;
            }
            let (Some((top, bottom, dr)), Some((left, right, dc))) = (fractions(rp, rows), fractions(cp, cols)) else {
                return Ok(None);
            };
            if dr.iter().all(|&d| d == 0.0) && dc.iter().all(|&d| d == 0.0) {
                // skimage: (1 - 0) * a + 0 * b == a, so the pixel itself.
                samples.push(Sample::Pixel { dr: top, dc: left });
                continue;
            }
            let (Some(wr), Some(wc)) = (nominal(&dr), nominal(&dc)) else { return Ok(None) };
            let flat_sets = flat_sets(&dr, &dc);
            samples.push(Sample::Bilinear { top, bottom, left, right, wr: wr as f32, wc: wc as f32, dr, dc, flat_sets });
        }
        let width = plane_width(cols, pad) as isize;
        let (mut zero_bits, mut pixels, mut quads) = (0u32, Vec::new(), Vec::new());
        for (i, s) in samples.iter().enumerate() {
            let bit = 1u32 << i;
            match s {
                Sample::Zero => zero_bits |= bit,
                Sample::Pixel { dr, dc } => pixels.push((dr * width + dc, bit)),
                Sample::Bilinear { top, bottom, left, right, wr, wc, flat_sets, .. } => quads.push(Quad {
                    at: [top * width + left, top * width + right, bottom * width + left, bottom * width + right],
                    wr: *wr,
                    wc: *wc,
                    bit,
                    flat_sets: if *flat_sets { u32::MAX } else { 0 },
                }),
            }
        }
        let quad_bits = quads.iter().fold(0, |acc, q| acc | q.bit);
        let all_flat_sets = quads.iter().all(|q| q.flat_sets != 0);
        Ok(Some(FastPlan { rows, cols, pad, samples, zero_bits, pixels, quads, quad_bits, all_flat_sets }))
    }
}
