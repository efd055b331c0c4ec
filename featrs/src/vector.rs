//! A minimal f64 SIMD vector abstraction for the Gabor kernels: AVX-512F, AVX2+FMA and a
//! scalar fallback behind one trait, so each kernel is written once and compiled per
//! instruction set (the caller picks one at run time with `is_x86_feature_detected!`).
//!
//! Every method is `#[inline(always)]`: the kernels are generic, inlined into a
//! `#[target_feature]` entry point, and the intrinsics end up compiled there.

use std::sync::OnceLock;

/// Instruction sets the kernels are compiled for, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

/// The best instruction set of this CPU, lowered by the environment variable
/// `FEATRS_SIMD=scalar|avx2|avx512` (to test every code path on one machine).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = detect();
        let requested = match std::env::var("FEATRS_SIMD").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        detected.min(requested)
    })
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Scalar
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
