//! Properties at few grey levels (the product quantizes to 32): per offset, a dense
//! `levels x levels` count table small enough for L1, filled once per pixel pair, and
//! every property from exact integer sums over its cells.
//!
//! Pairs are counted into four interleaved tables (pair `k` into table `k % 4`), so the
//! long runs of one pair in flat regions do not wait on a single counter.
use super::pair_props::write_props;
use super::pair_stats::PairStats;
use super::{pair_window, Prop, Spec};
use crate::error::{FeatError, Result};
use crate::value_err;

/// Largest `levels` counted this way (4 tables of `levels^2` u32: 64 KiB).
pub const SMALL_LEVELS_MAX: usize = 64;

/// An 8-bit image, or a tile of one: `rows x cols` values, rows `stride` apart.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [u8],
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl View<'_> {
    pub(crate) fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.stride..][..self.cols]
    }
}

/// Reusable count tables.
#[derive(Debug, Default)]
pub struct SmallScratch {
    tables: Vec<u32>,
    keys: Vec<u16>,
}

/// Ordered pair counts `C[i * levels + j]` of one offset, into `counts` (inlined into each
/// instruction set's clone of the caller: the keys are computed in its vectors).
#[inline(always)]
fn count(view: &View<'_>, (dr, dc): (i64, i64), levels: usize, s: &mut SmallScratch, counts: &mut [u32]) -> u64 {
    const SIDE: usize = SMALL_LEVELS_MAX * SMALL_LEVELS_MAX;
    // Tables a cache line more than SIDE apart: at a multiple of 4 KiB, the same cell of
    // the four (flat regions repeat one key) aliases, and each load waits for the stores before it.
    const STRIDE: usize = SIDE + 16;
    let l2 = levels * levels;
    // Each table spans every possible key (keys are < l2 <= SIDE, so `key % SIDE` is the
    // key and needs no bounds check); only the first l2 cells are used and reset.
    s.tables.resize(4 * STRIDE, 0);
    for t in s.tables.chunks_exact_mut(STRIDE) {
        t[..l2].fill(0);
    }
    let (r0, r1, c0, c1) = pair_window(view.rows, view.cols, dr, dc);
    let width = c1 - c0;
    for r in r0..r1 {
        let a = &view.row(r)[c0..c1];
        let b = &view.row((r as i64 + dr) as usize)[(c0 as i64 + dc) as usize..][..width];
        // Indexed stores, not `extend`: this loop vectorises.
        s.keys.resize(width, 0);
        for ((key, &i), &j) in s.keys.iter_mut().zip(a).zip(b) {
            *key = (i as u16) * levels as u16 + j as u16;
        }
        let (t0, rest) = s.tables.split_at_mut(STRIDE);
        let (t1, rest) = rest.split_at_mut(STRIDE);
        let (t2, t3) = rest.split_at_mut(STRIDE);
        let (t0, t1, t2, t3): (&mut [u32; STRIDE], &mut [u32; STRIDE], &mut [u32; STRIDE], &mut [u32; STRIDE]) = (
            t0.try_into().expect("a table of STRIDE cells"),
            t1.try_into().expect("a table of STRIDE cells"),
            t2.try_into().expect("a table of STRIDE cells"),
            t3.try_into().expect("a table of STRIDE cells"),
        );
        let mut quads = s.keys.chunks_exact(4);
        for q in &mut quads {
            t0[q[0] as usize % SIDE] += 1;
            t1[q[1] as usize % SIDE] += 1;
            t2[q[2] as usize % SIDE] += 1;
            t3[q[3] as usize % SIDE] += 1;
        }
        for &k in quads.remainder() {
            t0[k as usize % SIDE] += 1;
        }
    }
    let t = &s.tables;
    for (k, c) in counts.iter_mut().enumerate() {
        *c = t[k] + t[STRIDE + k] + t[2 * STRIDE + k] + t[3 * STRIDE + k];
    }
    ((r1 - r0) * width) as u64
}

/// The pair statistics [`prop_from_stats`] reads, from ordered counts.
///
/// Integer sums (u64: a count is below 2^32 and a weight `i * j` below 2^12, so no sum of
/// at most 4,096 cells overflows), in loops over whole rows and diagonals of the table
/// that vectorise; inlined into each instruction set's clone of the caller.
#[inline(always)]
fn stats(counts: &[u32], levels: usize, pairs: u64, symmetric: bool, entropy: bool) -> PairStats {
    let mut st = PairStats::new();
    st.pairs = pairs;
    let mut col = [0u64; SMALL_LEVELS_MAX];
    let (mut s_i, mut s_ii, mut s_ij) = (0u64, 0u64, 0u64);
    for i in 0..levels {
        let row = &counts[i * levels..][..levels];
        let (mut r, mut rj) = (0u64, 0u64);
        for ((j, &c), into) in row.iter().enumerate().zip(&mut col[..levels]) {
            let c = c as u64;
            r += c;
            rj += c * j as u64;
            *into += c;
        }
        let fi = i as u64;
        s_i += fi * r;
        s_ii += fi * fi * r;
        s_ij += fi * rj;
    }
    let (mut s_j, mut s_jj) = (0u64, 0u64);
    for (j, &c) in col[..levels].iter().enumerate() {
        s_j += j as u64 * c;
        s_jj += (j * j) as u64 * c;
    }
    // |i - j| == d on the table's d-th diagonals above and below the main one.
    st.diff_hist[0] = (0..levels).map(|i| counts[i * levels + i] as u64).sum();
    for d in 1..levels {
        st.diff_hist[d] = (0..levels - d)
            .map(|i| counts[i * levels + i + d] as u64 + counts[(i + d) * levels + i] as u64)
            .sum();
    }
    st.s_absdiff = (1..levels).map(|d| d as u64 * st.diff_hist[d]).sum();
    (st.s_i, st.s_j, st.s_ii, st.s_jj, st.s_ij) = (s_i, s_j, s_ii, s_jj, s_ij);
    if symmetric {
        // The symmetric matrix's cells: U = C[i,j] + C[j,i] twice off the diagonal, 2 C[i,i] on it.
        for i in 0..levels {
            let d = counts[i * levels + i] as u64;
            st.sq_diag += d * d;
            st.sq_all += d * d;
            for j in i + 1..levels {
                let u = counts[i * levels + j] as u64 + counts[j * levels + i] as u64;
                st.sq_all += u * u;
            }
        }
    } else {
        st.sq_all = counts[..levels * levels].iter().map(|&c| c as u64 * c as u64).sum();
    }
    if entropy {
        st.entropy = entropy_of(counts, levels, pairs, symmetric);
    }
    st
}

/// `-sum p ln p` over the (symmetric) matrix's cells.
fn entropy_of(counts: &[u32], levels: usize, pairs: u64, symmetric: bool) -> f64 {
    let total = (if symmetric { 2 } else { 1 } * pairs) as f64;
    let plogp = |c: u64| {
        let p = c as f64 / total;
        p * -p.ln()
    };
    let mut h = 0.0;
    for i in 0..levels {
        if symmetric {
            let d = counts[i * levels + i] as u64;
            if d != 0 {
                h += plogp(2 * d);
            }
            for j in i + 1..levels {
                let u = counts[i * levels + j] as u64 + counts[j * levels + i] as u64;
                if u != 0 {
                    h += 2.0 * plogp(u);
                }
            }
        } else {
            for j in 0..levels {
                let c = counts[i * levels + j] as u64;
                if c != 0 {
                    h += plogp(c);
                }
            }
        }
    }
    h
}

/// GLCM properties of one (tile of an) image with values below `spec.levels` <=
/// [`SMALL_LEVELS_MAX`]; layout and `unsure` as [`super::props_from_pairs`].
pub fn props_small(view: &View<'_>, spec: &Spec<'_>, s: &mut SmallScratch, out: &mut [f64], unsure: &mut [u8]) -> Result<()> {
    let levels = spec.levels;
    if levels > SMALL_LEVELS_MAX {
        return Err(FeatError::Internal(format!("props_small called with {levels} levels")));
    }
    if levels == 0 {
        return value_err!("The maximum grayscale value in the image should be smaller than the number of levels.");
    }
    if view.rows == 0 || view.cols == 0 {
        return value_err!("The parameter `image` cannot be an empty array");
    }
    if view.cols > view.stride || view.data.len() < (view.rows - 1) * view.stride + view.cols {
        return value_err!("image view of {} x {} (stride {}) does not fit its {} values", view.rows, view.cols, view.stride, view.data.len());
    }
    spec.check_outputs(out, unsure)?;
    // A maximum per row (it vectorises, unlike a search that stops at the first).
    if (0..view.rows).map(|r| view.row(r).iter().fold(0u8, |m, &v| m.max(v))).max().unwrap_or(0) as usize >= levels {
        return value_err!("The maximum grayscale value in the image should be smaller than the number of levels.");
    }
    unsure.fill(0);
    props_simd(view, spec, s, out, unsure);
    Ok(())
}

crate::simd::multiversion! {
    /// [`props_body`] on the best instruction set.
    fn props_simd(view: &View<'_>, spec: &Spec<'_>, s: &mut SmallScratch, out: &mut [f64], unsure: &mut [u8]) {
        avx512("avx512f,avx512bw") => props_body,
        avx2("avx2") => props_body,
        _ => props_body,
    }
}

/// Counting and sums of a validated view (compiled per instruction set; the sums are
/// exact integers in every variant, so all give the same numbers).
#[inline(always)]
fn props_body(view: &View<'_>, spec: &Spec<'_>, s: &mut SmallScratch, out: &mut [f64], unsure: &mut [u8]) {
    let (levels, symmetric) = (spec.levels, spec.symmetric);
    let entropy = spec.props.contains(&Prop::Entropy);
    let mut counts = vec![0u32; levels * levels];
    for (o, &off) in spec.offsets.iter().enumerate() {
        // Distances and angles can round to the same pixel offset (the defaults' d = 1
        // and d = 2 at 45 and 135 degrees are both one pixel diagonally): count it once.
        if let Some(first) = spec.offsets[..o].iter().position(|&e| e == off) {
            copy_props(spec, first, o, out, unsure);
            continue;
        }
        let pairs = count(view, off, levels, s, &mut counts);
        let st = stats(&counts, levels, pairs, symmetric, entropy);
        write_props(&st, spec, o, out, unsure);
    }
}

/// The properties of offset `from` (already written) again as those of offset `to`.
fn copy_props(spec: &Spec<'_>, from: usize, to: usize, out: &mut [f64], unsure: &mut [u8]) {
    let n = spec.offsets.len();
    for k in 0..spec.props.len() {
        out[k * n + to] = out[k * n + from];
    }
    unsure[to] = unsure[from];
}
