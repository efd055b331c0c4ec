//! Pixel types and the float precision skimage promotes each to.
use std::ops::Sub;

/// Floating-point type skimage computes the gradient in (`float32` for float32 input).
pub trait Work: Copy + Send + Sync + PartialOrd + Sub<Output = Self> {
    const ZERO: Self;
    /// numpy computes this type's `hypot` in float32.
    const SINGLE: bool;
    /// Channel magnitudes closer than this (relative) may compare either way in numpy.
    const TIE_RTOL: Self;
    fn to_f64(self) -> f64;
    fn mul(self, other: Self) -> Self;
    /// `hypot` in this precision, used only to pick the strongest channel.
    fn magnitude(gr: Self, gc: Self) -> Self;
}

impl Work for f64 {
    const ZERO: Self = 0.0;
    const SINGLE: bool = false;
    const TIE_RTOL: Self = 1e-13;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn magnitude(gr: Self, gc: Self) -> Self {
        (gr * gr + gc * gc).sqrt()
    }
}

impl Work for f32 {
    const ZERO: Self = 0.0;
    const SINGLE: bool = true;
    const TIE_RTOL: Self = 1e-5;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn magnitude(gr: Self, gc: Self) -> Self {
        let (r, c) = (gr as f64, gc as f64);
        (r * r + c * c).sqrt() as f32
    }
}

/// An input pixel type and the precision skimage promotes it to.
pub trait Pixel: Copy + Send + Sync {
    type W: Work;
    /// Gradients of this type (without `transform_sqrt`) are integers in [-255, 255].
    const BYTE: bool = false;
    fn work(self) -> Self::W;
    /// `np.sqrt` of the promoted value (`transform_sqrt`).
    fn work_sqrt(self) -> Self::W;
    /// Finite and, when `transform_sqrt`, non-negative.
    fn acceptable(self, transform_sqrt: bool) -> bool;
}

impl Pixel for u8 {
    type W = f64;
    const BYTE: bool = true;
    #[inline(always)]
    fn work(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn work_sqrt(self) -> f64 {
        (self as f64).sqrt()
    }
    #[inline(always)]
    fn acceptable(self, _: bool) -> bool {
        true
    }
}

/// Floats compute in their own precision and must be finite (and non-negative under
/// `transform_sqrt`).
macro_rules! float_pixel {
    ($($t:ty),+) => {$(
        impl Pixel for $t {
            type W = $t;
            #[inline(always)]
            fn work(self) -> $t {
                self
            }
            #[inline(always)]
            fn work_sqrt(self) -> $t {
                self.sqrt()
            }
            #[inline(always)]
            fn acceptable(self, transform_sqrt: bool) -> bool {
                self.is_finite() && !(transform_sqrt && self < 0.0)
            }
        }
    )+};
}

float_pixel!(f64, f32);
