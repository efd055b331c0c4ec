//! Exact integer pair statistics of an 8-bit image for one offset, without a matrix.
use super::small::View;
use super::{pair_window, Prop};

/// Which pair statistics a set of properties needs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Needs {
    pub(crate) diff_hist: bool,
    pub(crate) squares: bool,
    pub(crate) moments: bool,
    pub(crate) entropy: bool,
}

impl Needs {
    pub(crate) fn of(props: &[Prop]) -> Needs {
        let mut n = Needs::default();
        for p in props {
            match p {
                Prop::Contrast | Prop::Dissimilarity => n.moments = true,
                Prop::Homogeneity => n.diff_hist = true,
                Prop::Energy | Prop::Asm => n.squares = true,
                Prop::Correlation | Prop::Mean | Prop::Variance | Prop::Std => n.moments = true,
                Prop::Entropy => n.entropy = true,
            }
        }
        n
    }
}

/// Everything the properties of one 8-bit GLCM depend on, accumulated over pixel pairs
/// `(i, j)` as exact integers.
#[derive(Debug, Clone)]
pub(crate) struct PairStats {
    pub(crate) pairs: u64,
    pub(crate) s_i: u64,
    pub(crate) s_j: u64,
    pub(crate) s_ii: u64,
    pub(crate) s_jj: u64,
    pub(crate) s_ij: u64,
    pub(crate) s_absdiff: u64,
    /// `diff_hist[k]`: pairs with `|i - j| == k`.
    pub(crate) diff_hist: [u64; 256],
    /// Sum over table cells of count^2, and its diagonal part (the keys of a symmetric
    /// matrix are unordered pairs, whose cells weigh differently).
    pub(crate) sq_all: u64,
    pub(crate) sq_diag: u64,
    /// `-sum p ln p`, only when asked for.
    pub(crate) entropy: f64,
}

impl PairStats {
    pub(crate) fn new() -> PairStats {
        PairStats {
            pairs: 0,
            s_i: 0,
            s_j: 0,
            s_ii: 0,
            s_jj: 0,
            s_ij: 0,
            s_absdiff: 0,
            diff_hist: [0; 256],
            sq_all: 0,
            sq_diag: 0,
            entropy: 0.0,
        }
    }
}

/// Reusable memory for [`props_from_pairs`]: a 256 x 256 count table kept all-zero
/// between calls.
pub struct PairScratch {
    pub(crate) table: Vec<u32>,
    /// Table keys of one row of pairs.
    pub(crate) keys: Vec<u16>,
    /// Set while the table may hold counts (so an interrupted call cannot leak them).
    pub(crate) dirty: bool,
    /// Count tables of the few-levels path.
    pub(crate) small: super::small::SmallScratch,
    /// A tile copied out of its image.
    pub(crate) tile: Vec<u8>,
}

impl Default for PairScratch {
    fn default() -> Self {
        PairScratch {
            table: vec![0; 256 * 256],
            keys: Vec::new(),
            small: Default::default(),
            tile: Vec::new(),
            dirty: false,
        }
    }
}

/// Moments of one row segment of pairs: `(sum i, sum i^2, sum j, sum j^2, sum ij,
/// sum |i - j|)`. Lanes accumulate in u32, which holds 65 536 values of 255^2.
#[inline(always)]
pub(crate) fn row_moments(a: &[u8], b: &[u8]) -> [u64; 6] {
    let mut total = [0u64; 6];
    for (ca, cb) in a.chunks(65536).zip(b.chunks(65536)) {
        let (mut si, mut sii, mut sj, mut sjj, mut sij, mut sad) =
            (0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
        for (&x, &y) in ca.iter().zip(cb) {
            let (x, y) = (x as u32, y as u32);
            si += x;
            sii = sii.wrapping_add(x * x);
            sj += y;
            sjj = sjj.wrapping_add(y * y);
            sij = sij.wrapping_add(x * y);
            sad += x.abs_diff(y);
        }
        for (t, s) in total.iter_mut().zip([si, sii, sj, sjj, sij, sad]) {
            *t += s as u64;
        }
    }
    total
}

/// Histogram of `|i - j|` over a row segment, into four sub-histograms so that runs of
/// equal differences (flat regions) do not serialize on one counter.
#[inline(always)]
pub(crate) fn row_diff_hist(a: &[u8], b: &[u8], hist: &mut [[u32; 256]; 4]) {
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            hist[k][x[k].abs_diff(y[k]) as usize] += 1;
        }
    }
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        hist[0][x.abs_diff(y) as usize] += 1;
    }
}

/// Table keys of a row segment of pairs: `i * 256 + j`, or `min * 256 + max` when
/// `symmetric` (the cell of the unordered pair). Vectorizes.
#[inline(always)]
pub(crate) fn row_keys(a: &[u8], b: &[u8], symmetric: bool, keys: &mut Vec<u16>) {
    keys.clear();
    if symmetric {
        keys.extend(
            a.iter()
                .zip(b)
                .map(|(&i, &j)| (i.min(j) as u16) << 8 | i.max(j) as u16),
        );
    } else {
        keys.extend(a.iter().zip(b).map(|(&i, &j)| (i as u16) << 8 | j as u16));
    }
}

/// Count keys into the table, returning `sum k` over the counts `k` before each bump:
/// the sum of squared counts grows by `2k + 1` per bump, so it is `2 sum k + n`.
/// With `hist`, also histogram `|i - j|` (four sub-histograms, so runs of equal
/// differences in flat regions do not serialize on one counter).
#[inline(always)]
pub(crate) fn count_keys(keys: &[u16], table: &mut [u32; 65536], hist: Option<&mut [[u32; 256]; 4]>) -> u64 {
    let mut before = 0u64;
    let mut bump = |key: u16| {
        let k = table[key as usize];
        table[key as usize] = k + 1;
        before += k as u64;
    };
    match hist {
        Some(hist) => {
            let mut chunks = keys.chunks_exact(4);
            for q4 in &mut chunks {
                for (q, &key) in q4.iter().enumerate() {
                    bump(key);
                    hist[q][((key >> 8) as u8).abs_diff(key as u8) as usize] += 1;
                }
            }
            for &key in chunks.remainder() {
                bump(key);
                hist[0][((key >> 8) as u8).abs_diff(key as u8) as usize] += 1;
            }
        }
        None => keys.iter().for_each(|&key| bump(key)),
    }
    before
}

/// Read (and reset to zero) the table cells of a row's keys: entropy terms.
#[inline(always)]
pub(crate) fn drain_keys(keys: &[u16], symmetric: bool, table: &mut [u32; 65536], total: f64) -> f64 {
    let mut h = 0.0;
    for &key in keys {
        let c = table[key as usize];
        if c != 0 {
            table[key as usize] = 0;
            let (lo, hi) = (key >> 8, key & 255);
            if symmetric && lo != hi {
                // Two matrix cells (i, j) and (j, i), each holding c.
                let p = c as f64 / total;
                h += 2.0 * (p * -p.ln());
            } else {
                let p = (if symmetric { 2 * c } else { c }) as f64 / total;
                h += p * -p.ln();
            }
        }
    }
    h
}

crate::simd::multiversion! {
    /// [`pair_stats_body`] compiled for the best instruction set this CPU has; it has
    /// no AVX-512 build, AVX-512 CPUs run the AVX2 one.
    pub(crate) fn pair_stats(view: &View<'_>, offset: (i64, i64), symmetric: bool, needs: Needs, scratch: &mut PairScratch) -> PairStats {
        avx512("avx2,fma") => pair_stats_body,
        avx2("avx2,fma") => pair_stats_body,
        _ => pair_stats_body,
    }
}

#[inline(always)]
fn pair_stats_body(
    view: &View<'_>,
    (dr, dc): (i64, i64),
    symmetric: bool,
    needs: Needs,
    scratch: &mut PairScratch,
) -> PairStats {
    let (rows, cols) = (view.rows, view.cols);
    let mut st = PairStats::new();
    let (r0, r1, c0, c1) = pair_window(rows, cols, dr, dc);
    let width = c1 - c0;
    st.pairs = ((r1 - r0) * width) as u64;
    let segments = || {
        (r0..r1).map(move |r| {
            let pr = (r as i64 + dr) as usize;
            let pc = (c0 as i64 + dc) as usize;
            (&view.row(r)[c0..c1], &view.row(pr)[pc..pc + width])
        })
    };
    if needs.moments {
        for (a, b) in segments() {
            let m = row_moments(a, b);
            st.s_i += m[0];
            st.s_ii += m[1];
            st.s_j += m[2];
            st.s_jj += m[3];
            st.s_ij += m[4];
            st.s_absdiff += m[5];
        }
    }
    let mut hist = [[0u32; 256]; 4];
    let mut pending = 0u64;
    if needs.squares || needs.entropy {
        let PairScratch { table, keys, .. } = scratch;
        let table: &mut [u32; 65536] = (&mut table[..]).try_into().expect("256 x 256 table");
        let mut before = 0u64;
        for (a, b) in segments() {
            row_keys(a, b, symmetric, keys);
            before += count_keys(keys, table, needs.diff_hist.then_some(&mut hist));
            if needs.diff_hist {
                flush_hist_if_full(&mut hist, &mut pending, width, &mut st.diff_hist);
            }
        }
        st.sq_all = 2 * before + st.pairs;
        if symmetric {
            st.sq_diag = (0..256).map(|v| (table[v * 257] as u64).pow(2)).sum();
        }
        if needs.entropy {
            let total = (if symmetric { 2 } else { 1 } * st.pairs) as f64;
            for (a, b) in segments() {
                row_keys(a, b, symmetric, keys);
                st.entropy += drain_keys(keys, symmetric, table, total);
            }
        } else {
            table.fill(0);
        }
    } else if needs.diff_hist {
        for (a, b) in segments() {
            row_diff_hist(a, b, &mut hist);
            flush_hist_if_full(&mut hist, &mut pending, width, &mut st.diff_hist);
        }
    }
    flush_hist(&mut hist, &mut st.diff_hist);
    st
}

/// Move the u32 sub-histograms into the u64 one before a u32 could overflow:
/// `pending` counts the pairs they hold.
#[inline(always)]
pub(crate) fn flush_hist_if_full(
    hist: &mut [[u32; 256]; 4],
    pending: &mut u64,
    added: usize,
    into: &mut [u64; 256],
) {
    *pending += added as u64;
    if *pending > (u32::MAX / 2) as u64 {
        flush_hist(hist, into);
        *pending = 0;
    }
}

pub(crate) fn flush_hist(hist: &mut [[u32; 256]; 4], into: &mut [u64; 256]) {
    for sub in hist.iter_mut() {
        for (t, h) in into.iter_mut().zip(sub.iter_mut()) {
            *t += *h as u64;
            *h = 0;
        }
    }
}
