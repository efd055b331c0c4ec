//! Properties at few grey levels (the product quantizes to 32): per offset, a dense
//! `levels x levels` count table small enough for L1, filled once per pixel pair, and
//! every property from exact integer sums over its cells.
//!
//! Pairs are counted into four interleaved tables (pair `k` into table `k % 4`), so the
//! long runs of one pair in flat regions do not wait on a single counter.
use super::pair_props::prop_from_stats;
use super::pair_stats::PairStats;
use super::{pair_window, Prop};
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
    fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.stride..][..self.cols]
    }
}

/// Reusable count tables.
#[derive(Debug, Default)]
pub struct SmallScratch {
    tables: Vec<u32>,
    keys: Vec<u16>,
}

/// Ordered pair counts `C[i * levels + j]` of one offset, into `counts`.
fn count(view: &View<'_>, (dr, dc): (i64, i64), levels: usize, s: &mut SmallScratch, counts: &mut [u32]) -> u64 {
    let l2 = levels * levels;
    s.tables.clear();
    s.tables.resize(4 * l2, 0);
    let (r0, r1, c0, c1) = pair_window(view.rows, view.cols, dr, dc);
    let width = c1 - c0;
    for r in r0..r1 {
        let a = &view.row(r)[c0..c1];
        let b = &view.row((r as i64 + dr) as usize)[(c0 as i64 + dc) as usize..][..width];
        s.keys.clear();
        s.keys.extend(a.iter().zip(b).map(|(&i, &j)| (i as u16) * levels as u16 + j as u16));
        let (t0, rest) = s.tables.split_at_mut(l2);
        let (t1, rest) = rest.split_at_mut(l2);
        let (t2, t3) = rest.split_at_mut(l2);
        let mut quads = s.keys.chunks_exact(4);
        for q in &mut quads {
            t0[q[0] as usize] += 1;
            t1[q[1] as usize] += 1;
            t2[q[2] as usize] += 1;
            t3[q[3] as usize] += 1;
        }
        for &k in quads.remainder() {
            t0[k as usize] += 1;
        }
    }
    for (k, c) in counts.iter_mut().enumerate() {
        *c = s.tables[k] + s.tables[l2 + k] + s.tables[2 * l2 + k] + s.tables[3 * l2 + k];
    }
    ((r1 - r0) * width) as u64
}

/// The pair statistics [`prop_from_stats`] reads, from ordered counts.
fn stats(counts: &[u32], levels: usize, pairs: u64, symmetric: bool) -> PairStats {
    let mut st = PairStats::new();
    st.pairs = pairs;
    let total = (if symmetric { 2 } else { 1 } * pairs) as f64;
    let plogp = |c: u64| {
        let p = c as f64 / total;
        p * -p.ln()
    };
    for i in 0..levels {
        for j in 0..levels {
            let c = counts[i * levels + j] as u64;
            if c == 0 {
                continue;
            }
            let (iu, ju) = (i as u64, j as u64);
            st.s_i += c * iu;
            st.s_j += c * ju;
            st.s_ii += c * iu * iu;
            st.s_jj += c * ju * ju;
            st.s_ij += c * iu * ju;
            st.s_absdiff += c * iu.abs_diff(ju);
            st.diff_hist[i.abs_diff(j)] += c;
        }
    }
    for i in 0..levels {
        let d = counts[i * levels + i] as u64;
        if symmetric {
            // The symmetric matrix's cells: U = C[i,j] + C[j,i] twice off the diagonal, 2 C[i,i] on it.
            st.sq_diag += d * d;
            st.sq_all += d * d;
            if d != 0 {
                st.entropy += plogp(2 * d);
            }
            for j in i + 1..levels {
                let u = counts[i * levels + j] as u64 + counts[j * levels + i] as u64;
                st.sq_all += u * u;
                if u != 0 {
                    st.entropy += 2.0 * plogp(u);
                }
            }
        } else {
            for j in 0..levels {
                let c = counts[i * levels + j] as u64;
                st.sq_all += c * c;
                if c != 0 {
                    st.entropy += plogp(c);
                }
            }
        }
    }
    st
}

/// GLCM properties of one (tile of an) image with values below `levels` <=
/// [`SMALL_LEVELS_MAX`]; layout and `unsure` as [`super::props_from_pairs`].
#[allow(clippy::too_many_arguments)]
pub fn props_small(
    view: &View<'_>,
    offsets: &[(i64, i64)],
    levels: usize,
    symmetric: bool,
    props: &[Prop],
    s: &mut SmallScratch,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    if levels == 0 || levels > SMALL_LEVELS_MAX {
        return Err(FeatError::Internal(format!("props_small called with {levels} levels")));
    }
    if view.rows == 0 || view.cols == 0 {
        return value_err!("The parameter `image` cannot be an empty array");
    }
    if view.cols > view.stride || view.data.len() < (view.rows - 1) * view.stride + view.cols {
        return value_err!("image view of {} x {} (stride {}) does not fit its {} values", view.rows, view.cols, view.stride, view.data.len());
    }
    if out.len() != props.len() * offsets.len() || unsure.len() != offsets.len() {
        return value_err!("outputs must have {} x {} values", props.len(), offsets.len());
    }
    if (0..view.rows).any(|r| view.row(r).iter().any(|&v| v as usize >= levels)) {
        return value_err!("The maximum grayscale value in the image should be smaller than the number of levels.");
    }
    unsure.fill(0);
    let mut counts = vec![0u32; levels * levels];
    for (o, &off) in offsets.iter().enumerate() {
        let pairs = count(view, off, levels, s, &mut counts);
        let st = stats(&counts, levels, pairs, symmetric);
        for (k, &prop) in props.iter().enumerate() {
            out[k * offsets.len() + o] = prop_from_stats(&st, symmetric, prop).unwrap_or_else(|| {
                unsure[o] = 1;
                f64::NAN
            });
        }
    }
    Ok(())
}
