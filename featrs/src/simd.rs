//! The one SIMD dispatch of featrs: the instruction set is detected once, cached, and
//! may be lowered with the environment variable `FEATRS_SIMD=off|sse2|avx2|avx512|auto`
//! (read once, at the first kernel call). Every kernel asks [`level`] and runs the
//! variant compiled for it; none calls `is_x86_feature_detected!` itself.
//!
//! Also a minimal f64 vector abstraction (AVX-512F, AVX2+FMA and a scalar fallback
//! behind one trait) so that a kernel is written once and compiled per instruction set.
//! Every method is `#[inline(always)]`: the kernels are generic, inlined into a
//! `#[target_feature]` entry point, and the intrinsics end up compiled there.

use std::sync::OnceLock;

/// Instruction sets the kernels are compiled for, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable code only, compiled for the baseline target (no run-time dispatch).
    Off,
    /// x86-64's baseline SSE2 (kernels without an SSE2 variant run their portable code).
    Sse2,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F and BW.
    Avx512,
}

impl Level {
    /// The name `FEATRS_SIMD` and `featrs.simd_path()` use.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Sse2 => "sse2",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parse a `FEATRS_SIMD` value: `None` for `auto` (and for anything unknown, which
    /// therefore cannot select a path the CPU lacks).
    pub fn parse(name: &str) -> Option<Level> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" | "scalar" | "none" => Some(Level::Off),
            "sse2" => Some(Level::Sse2),
            "avx2" => Some(Level::Avx2),
            "avx512" => Some(Level::Avx512),
            _ => None,
        }
    }
}

/// The instruction set kernels use: the best this CPU has, lowered by `FEATRS_SIMD`.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let requested = std::env::var("FEATRS_SIMD").ok().and_then(|v| Level::parse(&v));
        let detected = detect();
        requested.map_or(detected, |r| r.min(detected))
    })
}

/// The best instruction set of this CPU.
pub fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
        Level::Sse2
    }
    #[cfg(not(target_arch = "x86_64"))]
    Level::Off
}

/// A vector of `LANES` f64.
pub trait F64s: Copy {
    const LANES: usize;
    /// Load `LANES` values from `p` (unaligned).
    ///
    /// # Safety
    /// `p .. p + LANES` must be readable, and the CPU must support the instruction set.
    unsafe fn load(p: *const f64) -> Self;
    /// Store `LANES` values to `p` (unaligned).
    ///
    /// # Safety
    /// `p .. p + LANES` must be writable, and the CPU must support the instruction set.
    unsafe fn store(self, p: *mut f64);
    fn splat(x: f64) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `self * b + c` (fused where the instruction set has FMA).
    fn mul_add(self, b: Self, c: Self) -> Self;
    fn sqrt(self) -> Self;
    /// Sum of the lanes.
    fn reduce_sum(self) -> f64;
}

/// One lane, plain arithmetic: the portable fallback.
#[derive(Clone, Copy)]
pub struct Scalar(f64);

impl F64s for Scalar {
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        Scalar(*p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        *p = self.0;
    }
    #[inline(always)]
    fn splat(x: f64) -> Self {
        Scalar(x)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        Scalar(self.0 * b.0 + c.0)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Scalar(self.0.sqrt())
    }
    #[inline(always)]
    fn reduce_sum(self) -> f64 {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::F64s;

    /// 4 lanes; only valid on CPUs with AVX2 and FMA.
    #[derive(Clone, Copy)]
    pub struct Avx2(__m256d);

    // SAFETY (all blocks below): callers only use these types inside functions compiled
    // for (and run on CPUs with) the matching instruction set.
    impl F64s for Avx2 {
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            Avx2(_mm256_loadu_pd(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            _mm256_storeu_pd(p, self.0)
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            unsafe { Avx2(_mm256_set1_pd(x)) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            unsafe { Avx2(_mm256_add_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            unsafe { Avx2(_mm256_sub_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            unsafe { Avx2(_mm256_mul_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            unsafe { Avx2(_mm256_fmadd_pd(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { Avx2(_mm256_sqrt_pd(self.0)) }
        }
        #[inline(always)]
        fn reduce_sum(self) -> f64 {
            let mut lanes = [0.0f64; 4];
            unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), self.0) };
            (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
        }
    }

    /// 8 lanes; only valid on CPUs with AVX-512F.
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512d);

    impl F64s for Avx512 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            Avx512(_mm512_loadu_pd(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            _mm512_storeu_pd(p, self.0)
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            unsafe { Avx512(_mm512_set1_pd(x)) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            unsafe { Avx512(_mm512_add_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            unsafe { Avx512(_mm512_sub_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            unsafe { Avx512(_mm512_mul_pd(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            unsafe { Avx512(_mm512_fmadd_pd(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { Avx512(_mm512_sqrt_pd(self.0)) }
        }
        #[inline(always)]
        fn reduce_sum(self) -> f64 {
            let mut lanes = [0.0f64; 8];
            unsafe { _mm512_storeu_pd(lanes.as_mut_ptr(), self.0) };
            ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
                + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_means_auto() {
        for l in [Level::Off, Level::Sse2, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("auto"), None);
        assert_eq!(Level::parse("neon"), None);
    }

    #[test]
    fn the_level_never_exceeds_the_cpu() {
        assert!(level() <= detect());
    }

    #[test]
    fn vector_types_agree_with_scalar() {
        let a = [1.5f64, -2.0, 3.25, 4.0, 0.5, 6.0, -7.0, 8.0];
        let s: f64 = a.iter().map(|v| v * v).sum();
        let lane = |x: f64| Scalar::splat(x).mul(Scalar::splat(x)).reduce_sum();
        assert_eq!(a.iter().map(|&v| lane(v)).sum::<f64>(), s);
        #[cfg(target_arch = "x86_64")]
        if level() >= Level::Avx2 {
            // SAFETY: the CPU has AVX2 + FMA; `a` holds 8 values.
            let v = unsafe { avx2_sum_of_squares(&a) };
            assert!((v - s).abs() < 1e-12);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_sum_of_squares(a: &[f64; 8]) -> f64 {
        let (x, y) = (Avx2::load(a.as_ptr()), Avx2::load(a.as_ptr().add(4)));
        x.mul_add(x, y.mul(y)).reduce_sum()
    }
}
