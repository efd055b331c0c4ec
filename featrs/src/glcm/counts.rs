//! Dense co-occurrence counts (`graycomatrix`) and their normalisation.
use super::{check_levels, check_shape, offset_sums, pair_window};
use crate::error::Result;
use crate::value_err;

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
    let sums = offset_sums(counts, n_offsets, |c| c as u64);
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
            // 0 / s is +0 (s >= 1): most cells are empty, and the division is the cost.
            *o = if c == 0 { 0.0 } else { c as f64 / s };
        }
    }
    Ok(())
}
