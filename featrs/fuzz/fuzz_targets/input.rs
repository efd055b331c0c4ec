//! Turning fuzz bytes into kernel arguments (shared by every target).
#![allow(dead_code)] // each target uses a part of it

/// Reads little-endian values from the fuzz input; zeros once it runs out.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, k| acc | (self.u8() as u64) << (8 * k))
    }

    /// A size in `0..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        self.u16() as usize % (max + 1)
    }

    /// Any f64 bit pattern (NaN, infinities, subnormals included) one time in four,
    /// otherwise a modest value, so both the checks and the arithmetic get exercised.
    pub fn f64(&mut self) -> f64 {
        let tag = self.u8();
        let bits = self.u64();
        match tag % 4 {
            0 => f64::from_bits(bits),
            1 => (bits % 2001) as f64 / 100.0 - 10.0,
            2 => (bits % 64) as f64,
            _ => (bits % 100_000) as f64 / 1000.0,
        }
    }

    /// The rest of the input.
    pub fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.0)
    }
}

/// `n` pixels from the input, cycling through what is left (zeros if nothing is).
pub fn pixels(bytes: &[u8], n: usize) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![0; n];
    }
    (0..n).map(|i| bytes[i % bytes.len()]).collect()
}

/// A kernel error is fine; a featrs bug is not (panics abort the fuzzer by themselves).
pub fn check<T>(r: Result<T, _featrs::error::FeatError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(_featrs::error::FeatError::Internal(m)) => panic!("internal error: {m}"),
        Err(_) => None,
    }
}
