//! The one SIMD dispatch of featrs: the instruction set is detected once, cached, and
//! may be lowered with the environment variable `FEATRS_SIMD=off|sse2|avx2|avx512|auto`
//! (read once, at the first kernel call). Every kernel runs through [`multiversion!`],
//! which asks [`level`] for the variant to run; none calls `is_x86_feature_detected!`
//! itself.
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

/// Define `fn $name(args)`, which runs one `#[inline(always)]` body compiled for the
/// instruction set [`level`] reports: each arm names the body (a path, with the vector
/// type or block sizes that suit the instruction set) and, for the x86 arms, the
/// `#[target_feature]` list its clone is compiled with.
///
/// ```ignore
/// crate::simd::multiversion! {
///     fn sum(xs: &[f64]) -> f64 {
///         avx512("avx512f") => sum_body::<Avx512>,
///         avx2("avx2,fma") => sum_body::<Avx2>,
///         _ => sum_body::<Scalar>,
///     }
/// }
/// ```
///
/// The clones differ only in what the compiler may use; a kernel whose numbers must not
/// depend on the path keeps its arithmetic free of instruction-set choices.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)? ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? {
            avx512($f512:literal) => $b512:expr,
            avx2($f2:literal) => $b2:expr,
            _ => $b0:expr $(,)?
        }
    ) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = $f512)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512 $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
                $b512($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = $f2)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2 $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
                $b2($($arg),*)
            }

            match $crate::simd::level() {
                // SAFETY (both): level() only reports instruction sets this CPU has.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => $b0($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

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

    /// `impl F64s` for one x86 vector type: the widths differ only in the intrinsics'
    /// names, and in how many lanes `reduce_sum` folds (pairwise, as `$reduce` spells out).
    macro_rules! x86_f64s {
        ($(#[$doc:meta])* $t:ident($reg:ty), $lanes:literal, $loadu:ident, $storeu:ident, $set1:ident, $add:ident,
         $sub:ident, $mul:ident, $fmadd:ident, $sqrt:ident, |$l:ident| $reduce:expr) => {
            $(#[$doc])*
            #[derive(Clone, Copy)]
            pub struct $t($reg);

            // SAFETY (every block): callers only use this type inside functions compiled
            // for (and run on CPUs with) its instruction set.
            impl F64s for $t {
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn load(p: *const f64) -> Self {
                    $t($loadu(p))
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut f64) {
                    $storeu(p, self.0)
                }
                #[inline(always)]
                fn splat(x: f64) -> Self {
                    unsafe { $t($set1(x)) }
                }
                #[inline(always)]
                fn add(self, o: Self) -> Self {
                    unsafe { $t($add(self.0, o.0)) }
                }
                #[inline(always)]
                fn sub(self, o: Self) -> Self {
                    unsafe { $t($sub(self.0, o.0)) }
                }
                #[inline(always)]
                fn mul(self, o: Self) -> Self {
                    unsafe { $t($mul(self.0, o.0)) }
                }
                #[inline(always)]
                fn mul_add(self, b: Self, c: Self) -> Self {
                    unsafe { $t($fmadd(self.0, b.0, c.0)) }
                }
                #[inline(always)]
                fn sqrt(self) -> Self {
                    unsafe { $t($sqrt(self.0)) }
                }
                #[inline(always)]
                fn reduce_sum(self) -> f64 {
                    let mut $l = [0.0f64; $lanes];
                    unsafe { $storeu($l.as_mut_ptr(), self.0) };
                    $reduce
                }
            }
        };
    }

    x86_f64s!(
        /// 4 lanes; only valid on CPUs with AVX2 and FMA.
        Avx2(__m256d), 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_add_pd,
        _mm256_sub_pd, _mm256_mul_pd, _mm256_fmadd_pd, _mm256_sqrt_pd,
        |l| (l[0] + l[1]) + (l[2] + l[3]));

    x86_f64s!(
        /// 8 lanes; only valid on CPUs with AVX-512F.
        Avx512(__m512d), 8, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_add_pd,
        _mm512_sub_pd, _mm512_mul_pd, _mm512_fmadd_pd, _mm512_sqrt_pd,
        |l| ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])));
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
