//! Gray-level co-occurrence matrices and their texture properties, with
//! scikit-image's numbers (`skimage.feature.graycomatrix` / `graycoprops`).
//!
//! Two ways to get properties:
//! - [`props_dense`] reads a dense `levels x levels x n_dist x n_angle` matrix, following
//!   scikit-image's float formulas term by term (what `graycoprops` does);
//! - [`props_from_pairs`] never builds the matrix: every property is an exact integer
//!   function of pair statistics (moments, a histogram of `|i - j|`, and sum of squared
//!   cell counts accumulated while counting), divided once at the end.
use crate::error::Result;
use crate::value_err;

/// Correlation is reported as "unsure" when a standard deviation computed in floating
/// point falls below this; the caller then reproduces scikit-image's own float rounding
/// (which decides between 1 and rounding noise around its 1e-15 threshold).
pub const UNSURE_STD: f64 = 1e-6;

/// scikit-image's threshold under which a standard deviation counts as zero.
const ZERO_STD: f64 = 1e-15;

/// A texture property of `graycoprops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    Contrast,
    Dissimilarity,
    Homogeneity,
    Energy,
    Correlation,
    Asm,
    Mean,
    Variance,
    Std,
    Entropy,
}

impl Prop {
    /// Parse scikit-image's property name (case-sensitive, like scikit-image).
    pub fn from_name(name: &str) -> Result<Prop> {
        Ok(match name {
            "contrast" => Prop::Contrast,
            "dissimilarity" => Prop::Dissimilarity,
            "homogeneity" => Prop::Homogeneity,
            "energy" => Prop::Energy,
            "correlation" => Prop::Correlation,
            "ASM" => Prop::Asm,
            "mean" => Prop::Mean,
            "variance" => Prop::Variance,
            "std" => Prop::Std,
            "entropy" => Prop::Entropy,
            _ => return value_err!("{name} is an invalid property"),
        })
    }
}

/// scikit-image's rounding of offsets: half away from zero, then truncation.
fn round_half_away(x: f64) -> i64 {
    // `as` saturates, so absurd (finite) distances give offsets beyond any image.
    (if x > 0.0 { x + 0.5 } else { x - 0.5 }) as i64
}

/// Pixel offsets `(d_row, d_col)` for every distance then angle, in the order
/// `P[..., d, a]` uses (`index = d * n_angles + a`).
pub fn offsets(distances: &[f64], angles: &[f64]) -> Result<Vec<(i64, i64)>> {
    if distances.is_empty() || angles.is_empty() {
        return value_err!("distances and angles must not be empty");
    }
    if let Some(d) = distances.iter().find(|d| !d.is_finite()) {
        return value_err!("distances must be finite, got {d}");
    }
    if let Some(a) = angles.iter().find(|a| !a.is_finite()) {
        return value_err!("angles must be finite, got {a}");
    }
    let mut out = Vec::with_capacity(distances.len() * angles.len());
    for &d in distances {
        for &a in angles {
            out.push((round_half_away(a.sin() * d), round_half_away(a.cos() * d)));
        }
    }
    Ok(out)
}

/// Rows and columns of the pixels `i` whose partner `j = (r + dr, c + dc)` is inside
/// the image: `(r0, r1, c0, c1)`, half-open, possibly empty.
fn pair_window(rows: usize, cols: usize, dr: i64, dc: i64) -> (usize, usize, usize, usize) {
    let span = |n: usize, d: i64| -> (usize, usize) {
        let n = n as i128;
        let d = d as i128;
        let lo = 0i128.max(-d);
        let hi = n.min(n - d);
        if hi <= lo {
            (0, 0)
        } else {
            (lo as usize, hi as usize)
        }
    };
    let (r0, r1) = span(rows, dr);
    let (c0, c1) = span(cols, dc);
    if r0 == r1 || c0 == c1 {
        (0, 0, 0, 0)
    } else {
        (r0, r1, c0, c1)
    }
}

fn check_shape(len: usize, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return value_err!("The parameter `image` cannot be an empty array");
    }
    if rows.checked_mul(cols) != Some(len) {
        return value_err!("image has {len} values, expected {rows} x {cols}");
    }
    Ok(())
}

fn check_levels<T: Copy + Into<u64>>(image: &[T], levels: usize) -> Result<()> {
    let max = image.iter().map(|&v| v.into()).max().unwrap_or(0);
    if max >= levels as u64 {
        return value_err!(
            "The maximum grayscale value in the image should be smaller than the number of levels."
        );
    }
    Ok(())
}

/// Co-occurrence counts like `graycomatrix(..., normed=False)`.
///
/// `counts` is the C-ordered `levels x levels x n_offsets` uint32 array (zeroed by the
/// caller); counts wrap around like scikit-image's uint32 accumulator.
pub fn cooccurrence<T: Copy + Into<u64>>(
    image: &[T],
    rows: usize,
    cols: usize,
    offsets: &[(i64, i64)],
    levels: usize,
    symmetric: bool,
    counts: &mut [u32],
) -> Result<()> {
    check_shape(image.len(), rows, cols)?;
    let n_off = offsets.len();
    match levels
        .checked_mul(levels)
        .and_then(|l2| l2.checked_mul(n_off))
    {
        Some(n) if n == counts.len() => {}
        _ => {
            return value_err!(
                "output has {} values, expected {levels}^2 x {n_off}",
                counts.len()
            )
        }
    }
    check_levels(image, levels)?;
    for (o, &(dr, dc)) in offsets.iter().enumerate() {
        let (r0, r1, c0, c1) = pair_window(rows, cols, dr, dc);
        for r in r0..r1 {
            let a = &image[r * cols + c0..r * cols + c1];
            let pr = (r as i64 + dr) as usize;
            let pc = (c0 as i64 + dc) as usize;
            let b = &image[pr * cols + pc..pr * cols + pc + (c1 - c0)];
            for (&i, &j) in a.iter().zip(b) {
                let cell = ((i.into() as usize) * levels + j.into() as usize) * n_off + o;
                counts[cell] = counts[cell].wrapping_add(1);
            }
        }
    }
    if symmetric {
        // P + P^T, with uint32 wrap-around like numpy.
        for i in 0..levels {
            for o in 0..n_off {
                let d = (i * levels + i) * n_off + o;
                counts[d] = counts[d].wrapping_mul(2);
            }
            for j in i + 1..levels {
                for o in 0..n_off {
                    let a = (i * levels + j) * n_off + o;
                    let b = (j * levels + i) * n_off + o;
                    let s = counts[a].wrapping_add(counts[b]);
                    counts[a] = s;
                    counts[b] = s;
                }
            }
        }
    }
    Ok(())
}

/// `normed=True`: each `P[:, :, o]` divided by its sum (a zero sum is left as zeros).
pub fn normalize(counts: &[u32], n_offsets: usize, out: &mut [f64]) -> Result<()> {
    if out.len() != counts.len() || n_offsets == 0 || !counts.len().is_multiple_of(n_offsets) {
        return value_err!("normalized output must match the counts' shape");
    }
    let mut sums = vec![0u64; n_offsets];
    for cell in counts.chunks_exact(n_offsets) {
        for (s, &c) in sums.iter_mut().zip(cell) {
            *s += c as u64;
        }
    }
    // numpy sums the uint32 counts as float64: exact while the total is below 2^53.
    let sums: Vec<f64> = sums
        .iter()
        .map(|&s| if s == 0 { 1.0 } else { s as f64 })
        .collect();
    for (o_cell, i_cell) in out
        .chunks_exact_mut(n_offsets)
        .zip(counts.chunks_exact(n_offsets))
    {
        for ((o, &c), &s) in o_cell.iter_mut().zip(i_cell).zip(&sums) {
            *o = c as f64 / s;
        }
    }
    Ok(())
}

/// `graycoprops(P, prop)` for a dense C-ordered `levels x levels x n_offsets` matrix.
///
/// Follows scikit-image's float formulas (normalize, then weighted sums over `i, j`).
/// `unsure[o]` is set to 1 for correlation cells whose standard deviation is too close
/// to scikit-image's zero threshold for this arithmetic to decide like numpy would.
pub fn props_dense<T: Copy + Into<f64>>(
    p: &[T],
    levels: usize,
    n_offsets: usize,
    prop: Prop,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    let n_off = n_offsets;
    if levels == 0 || n_off == 0 {
        return value_err!("P must not be empty");
    }
    match levels
        .checked_mul(levels)
        .and_then(|l2| l2.checked_mul(n_off))
    {
        Some(n) if n == p.len() => {}
        _ => return value_err!("P has {} values, expected {levels}^2 x {n_off}", p.len()),
    }
    if out.len() != n_off || unsure.len() != n_off {
        return value_err!("outputs must have {n_off} values");
    }
    let mut sums = vec![0.0f64; n_off];
    for cell in p.chunks_exact(n_off) {
        for (s, &v) in sums.iter_mut().zip(cell) {
            *s += v.into();
        }
    }
    for s in sums.iter_mut() {
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    unsure.fill(0);
    let mut acc = vec![0.0f64; n_off];
    match prop {
        Prop::Contrast | Prop::Dissimilarity | Prop::Homogeneity => {
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                let d = i as f64 - j as f64;
                let w = match prop {
                    Prop::Contrast => d * d,
                    Prop::Dissimilarity => d.abs(),
                    _ => 1.0 / (1.0 + d * d),
                };
                acc[o] += v * w;
            });
            out.copy_from_slice(&acc);
        }
        Prop::Asm | Prop::Energy => {
            visit_normalized(p, levels, &sums, &mut |_, _, o, v| acc[o] += v * v);
            for (r, a) in out.iter_mut().zip(&acc) {
                *r = if prop == Prop::Energy { a.sqrt() } else { *a };
            }
        }
        Prop::Entropy => {
            visit_normalized(p, levels, &sums, &mut |_, _, o, v| {
                if v != 0.0 {
                    acc[o] += v * -v.ln();
                }
            });
            out.copy_from_slice(&acc);
        }
        Prop::Mean | Prop::Variance | Prop::Std => {
            visit_normalized(p, levels, &sums, &mut |i, _, o, v| acc[o] += i as f64 * v);
            if prop == Prop::Mean {
                out.copy_from_slice(&acc);
            } else {
                let mean = acc.clone();
                acc.fill(0.0);
                visit_normalized(p, levels, &sums, &mut |i, _, o, v| {
                    let d = i as f64 - mean[o];
                    acc[o] += v * (d * d);
                });
                for (r, a) in out.iter_mut().zip(&acc) {
                    *r = if prop == Prop::Std { a.sqrt() } else { *a };
                }
            }
        }
        Prop::Correlation => {
            let mut mean_j = vec![0.0f64; n_off];
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                acc[o] += i as f64 * v;
                mean_j[o] += j as f64 * v;
            });
            let mean_i = acc;
            let mut var_i = vec![0.0f64; n_off];
            let mut var_j = vec![0.0f64; n_off];
            let mut cov = vec![0.0f64; n_off];
            visit_normalized(p, levels, &sums, &mut |i, j, o, v| {
                let di = i as f64 - mean_i[o];
                let dj = j as f64 - mean_j[o];
                var_i[o] += v * (di * di);
                var_j[o] += v * (dj * dj);
                cov[o] += v * (di * dj);
            });
            for o in 0..n_off {
                let (si, sj) = (var_i[o].sqrt(), var_j[o].sqrt());
                if si < UNSURE_STD || sj < UNSURE_STD {
                    unsure[o] = 1;
                }
                out[o] = if si < ZERO_STD || sj < ZERO_STD {
                    1.0
                } else {
                    cov[o] / (si * sj)
                };
            }
        }
    }
    Ok(())
}

/// Call `f(i, j, o, P[i, j, o] / sums[o])` for every cell, in C order (numpy's order).
#[inline(always)]
fn visit_normalized<T: Copy + Into<f64>, F: FnMut(usize, usize, usize, f64) + ?Sized>(
    p: &[T],
    levels: usize,
    sums: &[f64],
    f: &mut F,
) {
    let n_off = sums.len();
    for i in 0..levels {
        for j in 0..levels {
            let base = (i * levels + j) * n_off;
            for (o, &s) in sums.iter().enumerate() {
                f(i, j, o, p[base + o].into() / s);
            }
        }
    }
}

/// Which pair statistics a set of properties needs.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    diff_hist: bool,
    squares: bool,
    moments: bool,
    entropy: bool,
}

impl Needs {
    fn of(props: &[Prop]) -> Needs {
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
struct PairStats {
    pairs: u64,
    s_i: u64,
    s_j: u64,
    s_ii: u64,
    s_jj: u64,
    s_ij: u64,
    s_absdiff: u64,
    /// `diff_hist[k]`: pairs with `|i - j| == k`.
    diff_hist: [u64; 256],
    /// Sum over table cells of count^2, and its diagonal part (the keys of a symmetric
    /// matrix are unordered pairs, whose cells weigh differently).
    sq_all: u64,
    sq_diag: u64,
    /// `-sum p ln p`, only when asked for.
    entropy: f64,
}

impl PairStats {
    fn new() -> PairStats {
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
    table: Vec<u32>,
    /// Table keys of one row of pairs.
    keys: Vec<u16>,
    /// Set while the table may hold counts (so an interrupted call cannot leak them).
    dirty: bool,
}

impl Default for PairScratch {
    fn default() -> Self {
        PairScratch {
            table: vec![0; 256 * 256],
            keys: Vec::new(),
            dirty: false,
        }
    }
}

/// Moments of one row segment of pairs: `(sum i, sum i^2, sum j, sum j^2, sum ij,
/// sum |i - j|)`. Lanes accumulate in u32, which holds 65 536 values of 255^2.
#[inline(always)]
fn row_moments(a: &[u8], b: &[u8]) -> [u64; 6] {
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
fn row_diff_hist(a: &[u8], b: &[u8], hist: &mut [[u32; 256]; 4]) {
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
fn row_keys(a: &[u8], b: &[u8], symmetric: bool, keys: &mut Vec<u16>) {
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
fn count_keys(keys: &[u16], table: &mut [u32; 65536], hist: Option<&mut [[u32; 256]; 4]>) -> u64 {
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
fn drain_keys(keys: &[u16], symmetric: bool, table: &mut [u32; 65536], total: f64) -> f64 {
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

/// [`pair_stats_body`] compiled for the best instruction set this CPU has.
fn pair_stats(
    image: &[u8],
    rows: usize,
    cols: usize,
    offset: (i64, i64),
    symmetric: bool,
    needs: Needs,
    scratch: &mut PairScratch,
) -> PairStats {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::level() >= crate::simd::Level::Avx2 {
            // SAFETY: level() only reports instruction sets this CPU has.
            return unsafe {
                pair_stats_avx2(image, rows, cols, offset, symmetric, needs, scratch)
            };
        }
    }
    pair_stats_body(image, rows, cols, offset, symmetric, needs, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pair_stats_avx2(
    image: &[u8],
    rows: usize,
    cols: usize,
    offset: (i64, i64),
    symmetric: bool,
    needs: Needs,
    scratch: &mut PairScratch,
) -> PairStats {
    pair_stats_body(image, rows, cols, offset, symmetric, needs, scratch)
}

#[inline(always)]
fn pair_stats_body(
    image: &[u8],
    rows: usize,
    cols: usize,
    (dr, dc): (i64, i64),
    symmetric: bool,
    needs: Needs,
    scratch: &mut PairScratch,
) -> PairStats {
    let mut st = PairStats::new();
    let (r0, r1, c0, c1) = pair_window(rows, cols, dr, dc);
    let width = c1 - c0;
    st.pairs = ((r1 - r0) * width) as u64;
    let segments = || {
        (r0..r1).map(move |r| {
            let pr = (r as i64 + dr) as usize;
            let pc = (c0 as i64 + dc) as usize;
            (
                &image[r * cols + c0..r * cols + c1],
                &image[pr * cols + pc..pr * cols + pc + width],
            )
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
fn flush_hist_if_full(
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

fn flush_hist(hist: &mut [[u32; 256]; 4], into: &mut [u64; 256]) {
    for sub in hist.iter_mut() {
        for (t, h) in into.iter_mut().zip(sub.iter_mut()) {
            *t += *h as u64;
            *h = 0;
        }
    }
}

/// Value of one property from pair statistics; `None` when correlation hits a zero
/// variance that scikit-image's float arithmetic decides (see [`UNSURE_STD`]).
fn prop_from_stats(st: &PairStats, symmetric: bool, prop: Prop) -> Option<f64> {
    let n = st.pairs;
    if n == 0 {
        // An all-zero matrix: scikit-image divides by 1 and reads zeros (correlation: 1).
        return Some(if prop == Prop::Correlation { 1.0 } else { 0.0 });
    }
    let nf = n as f64;
    // Marginal moments of the (symmetric) matrix with total `tot`.
    let (tot, s_i, s_j, s_ii, s_jj, s_ij) = if symmetric {
        let s = st.s_i + st.s_j;
        let ss = st.s_ii + st.s_jj;
        (2 * n, s, s, ss, ss, 2 * st.s_ij)
    } else {
        (n, st.s_i, st.s_j, st.s_ii, st.s_jj, st.s_ij)
    };
    let (tot, s_i, s_j, s_ii, s_jj, s_ij) = (
        tot as i128,
        s_i as i128,
        s_j as i128,
        s_ii as i128,
        s_jj as i128,
        s_ij as i128,
    );
    let totf = tot as f64;
    Some(match prop {
        // sum (i - j)^2 = sum i^2 + sum j^2 - 2 sum ij, all exact.
        Prop::Contrast => (st.s_ii + st.s_jj - 2 * st.s_ij) as f64 / nf,
        Prop::Dissimilarity => st.s_absdiff as f64 / nf,
        Prop::Homogeneity => {
            let mut s = 0.0;
            for (k, &h) in st.diff_hist.iter().enumerate() {
                if h != 0 {
                    s += h as f64 / (1.0 + (k * k) as f64);
                }
            }
            s / nf
        }
        Prop::Asm | Prop::Energy => {
            let asm = if symmetric {
                // Off-diagonal keys are two cells of the same count, diagonal ones hold 2x:
                // 2 sum_off U^2 + 4 sum_diag U^2 = 2 sum_all U^2 + 2 sum_diag U^2.
                (2 * st.sq_all as u128 + 2 * st.sq_diag as u128) as f64 / (totf * totf)
            } else {
                st.sq_all as f64 / (totf * totf)
            };
            if prop == Prop::Energy {
                asm.sqrt()
            } else {
                asm
            }
        }
        Prop::Entropy => st.entropy,
        Prop::Mean => s_i as f64 / totf,
        Prop::Variance | Prop::Std => {
            let var = (tot * s_ii - s_i * s_i) as f64 / (totf * totf);
            if prop == Prop::Std {
                var.sqrt()
            } else {
                var
            }
        }
        Prop::Correlation => {
            let var_i = tot * s_ii - s_i * s_i;
            let var_j = tot * s_jj - s_j * s_j;
            if var_i == 0 && var_j == 0 {
                // A single cell: scikit-image's means are exact, its deviations 0.
                1.0
            } else if var_i == 0 || var_j == 0 {
                return None;
            } else {
                let cov = tot * s_ij - s_i * s_j;
                cov as f64 / ((var_i as f64).sqrt() * (var_j as f64).sqrt())
            }
        }
    })
}

/// GLCM properties of an 8-bit image without building the matrix.
///
/// `out` receives `props.len() * offsets.len()` values, prop-major then offset (the
/// layout of `graycoprops(P, prop).ravel()` concatenated over props). `unsure[o]` is set
/// to 1 when a correlation of offset `o` needs scikit-image's float arithmetic (a zero
/// variance of exactly one marginal); its value in `out` is then NaN.
#[allow(clippy::too_many_arguments)]
pub fn props_from_pairs(
    image: &[u8],
    rows: usize,
    cols: usize,
    offsets: &[(i64, i64)],
    levels: usize,
    symmetric: bool,
    props: &[Prop],
    scratch: &mut PairScratch,
    out: &mut [f64],
    unsure: &mut [u8],
) -> Result<()> {
    check_shape(image.len(), rows, cols)?;
    if out.len() != props.len() * offsets.len() || unsure.len() != offsets.len() {
        return value_err!(
            "outputs must have {} x {} values",
            props.len(),
            offsets.len()
        );
    }
    if rows.checked_mul(cols).is_none_or(|n| n > (1 << 31)) {
        return value_err!("image of {rows} x {cols} pixels is too large (at most 2^31 pixels)");
    }
    check_levels(image, levels)?;
    let needs = Needs::of(props);
    unsure.fill(0);
    if scratch.dirty {
        scratch.table.fill(0);
    }
    scratch.dirty = true;
    for (o, &off) in offsets.iter().enumerate() {
        let st = pair_stats(image, rows, cols, off, symmetric, needs, scratch);
        for (k, &prop) in props.iter().enumerate() {
            out[k * offsets.len() + o] = match prop_from_stats(&st, symmetric, prop) {
                Some(v) => v,
                None => {
                    unsure[o] = 1;
                    f64::NAN
                }
            };
        }
    }
    scratch.dirty = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: [u8; 16] = [0, 0, 1, 1, 0, 0, 1, 1, 0, 2, 2, 2, 2, 2, 3, 3];

    #[test]
    fn offsets_round_half_away_from_zero() {
        assert_eq!(
            offsets(&[0.5, -0.5, 1.0], &[0.0]).unwrap(),
            vec![(0, 1), (0, -1), (0, 1)]
        );
        let o = offsets(
            &[1.0],
            &[
                std::f64::consts::FRAC_PI_2,
                3.0 * std::f64::consts::FRAC_PI_4,
            ],
        )
        .unwrap();
        assert_eq!(o, vec![(1, 0), (1, -1)]);
        assert!(offsets(&[f64::NAN], &[0.0]).is_err());
        assert_eq!(pair_window(4, 4, i64::MAX, 0), (0, 0, 0, 0));
        assert_eq!(pair_window(4, 4, i64::MIN, 0), (0, 0, 0, 0));
    }

    #[test]
    fn skimage_docstring_example() {
        let angles = [
            0.0,
            std::f64::consts::FRAC_PI_4,
            std::f64::consts::FRAC_PI_2,
            3.0 * std::f64::consts::FRAC_PI_4,
        ];
        let off = offsets(&[1.0], &angles).unwrap();
        let mut p = vec![0u32; 4 * 4 * 4];
        cooccurrence(&EXAMPLE, 4, 4, &off, 4, false, &mut p).unwrap();
        let cell = |i: usize, j: usize, a: usize| p[(i * 4 + j) * 4 + a];
        let angle0: Vec<u32> = (0..16).map(|k| cell(k / 4, k % 4, 0)).collect();
        assert_eq!(angle0, vec![2, 2, 1, 0, 0, 2, 0, 0, 0, 0, 3, 1, 0, 0, 0, 1]);
        let angle3: Vec<u32> = (0..16).map(|k| cell(k / 4, k % 4, 3)).collect();
        assert_eq!(angle3, vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn pair_props_match_dense_props() {
        let off = offsets(&[1.0, 2.0], &[0.0, std::f64::consts::FRAC_PI_2]).unwrap();
        let all = [
            Prop::Contrast,
            Prop::Dissimilarity,
            Prop::Homogeneity,
            Prop::Energy,
            Prop::Correlation,
            Prop::Asm,
            Prop::Mean,
            Prop::Variance,
            Prop::Std,
            Prop::Entropy,
        ];
        for symmetric in [false, true] {
            let mut p = vec![0u32; 4 * 4 * off.len()];
            cooccurrence(&EXAMPLE, 4, 4, &off, 4, symmetric, &mut p).unwrap();
            let mut scratch = PairScratch::default();
            let mut fast = vec![0.0; all.len() * off.len()];
            let mut unsure = vec![0u8; off.len()];
            props_from_pairs(
                &EXAMPLE,
                4,
                4,
                &off,
                4,
                symmetric,
                &all,
                &mut scratch,
                &mut fast,
                &mut unsure,
            )
            .unwrap();
            assert!(scratch.table.iter().all(|&c| c == 0));
            for (k, &prop) in all.iter().enumerate() {
                let mut dense = vec![0.0; off.len()];
                let mut u = vec![0u8; off.len()];
                props_dense(&p, 4, off.len(), prop, &mut dense, &mut u).unwrap();
                for o in 0..off.len() {
                    let f = fast[k * off.len() + o];
                    assert!(
                        (f - dense[o]).abs() <= 1e-12 * dense[o].abs().max(1.0),
                        "{prop:?} {o}: {f} vs {}",
                        dense[o]
                    );
                }
            }
        }
    }

    #[test]
    fn values_at_or_above_levels_are_rejected() {
        let mut p = vec![0u32; 9];
        assert!(cooccurrence(&[3u8, 1], 1, 2, &[(0, 1)], 3, false, &mut p).is_err());
    }
}
