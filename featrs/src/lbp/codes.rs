//! Pattern -> code, per method, exactly as skimage numbers them.
use super::Method;

/// skimage's code of one pattern (bit `i` = neighbour `i` >= center), for any method but var.
pub fn code(mask: u64, p: usize, method: Method) -> u32 {
    let n_ones = mask.count_ones() as usize;
    // skimage counts changes between consecutive neighbours, not around the circle.
    let changes = if p > 1 { ((mask ^ (mask >> 1)) & ((1u64 << (p - 1)) - 1)).count_ones() } else { 0 };
    match method {
        Method::Default => mask as u32,
        Method::Ror => {
            let full = (1u64 << p) - 1;
            (0..p)
                .map(|k| (((mask >> k) | (mask << (p - k))) & full) as u32)
                .min()
                .unwrap_or(0)
        }
        Method::Uniform => {
            if changes <= 2 {
                n_ones as u32
            } else {
                p as u32 + 1
            }
        }
        Method::NriUniform => {
            if changes > 2 {
                (p * (p - 1) + 2) as u32
            } else if n_ones == 0 {
                0
            } else if n_ones == p {
                (p * (p - 1) + 1) as u32
            } else {
                let first_one = mask.trailing_zeros() as usize;
                let first_zero = (!mask).trailing_zeros() as usize;
                let rot_index = if first_one == 0 { n_ones - first_zero } else { p - first_one };
                (1 + (n_ones - 1) * p + rot_index) as u32
            }
        }
        Method::Var => 0,
    }
}
