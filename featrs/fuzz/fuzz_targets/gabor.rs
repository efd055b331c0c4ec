//! Gabor never panics: any kernel parameters, shape, boundary mode, cval, pixel values.
#![no_main]
use libfuzzer_sys::fuzz_target;

use _featrs::gabor::{bank_stats, filter, kernel_unscaled, BankPlan, Gabor, GaborScratch, Mode};

#[path = "input.rs"]
mod input;
use input::{check, pixels, Bytes};

const MODES: [Mode; 5] = [Mode::Reflect, Mode::Constant, Mode::Nearest, Mode::Mirror, Mode::Wrap];

fn gabor(b: &mut Bytes<'_>) -> Gabor {
    let theta = b.f64();
    Gabor {
        frequency: b.f64(),
        sigma_x: b.f64(),
        sigma_y: if b.u8() % 2 == 0 { f64::NAN } else { b.f64() },
        cos_theta: theta.cos(),
        sin_theta: theta.sin(),
        offset: b.f64(),
        half_x: b.size(12),
        half_y: b.size(12),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut g = gabor(&mut b);
    if g.sigma_y.is_nan() && b.u8() % 2 == 0 {
        g.sigma_y = g.sigma_x; // the separable (isotropic) path
    }
    let (rows, cols) = (b.size(24), b.size(24));
    let mode = MODES[b.u8() as usize % 5];
    let cval = b.f64();
    let single = b.u8() % 4 == 0;
    let bank: Vec<Gabor> = (0..b.size(3)).map(|_| gabor(&mut b)).collect();
    let img = pixels(b.rest(), rows * cols);
    let (h, w) = g.kernel_shape();
    let (mut re, mut im) = (vec![0.0; h * w], vec![0.0; h * w]);
    check(kernel_unscaled(&g, &mut re, &mut im));
    let f: Vec<f64> = img.iter().map(|&v| if v == 255 { f64::INFINITY } else { v as f64 / 255.0 }).collect();
    let mut s = GaborScratch::default();
    let (mut o_re, mut o_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
    check(filter(&f, rows, cols, &g, mode, cval, single, &mut s, &mut o_re, &mut o_im));
    if let Some(plan) = check(BankPlan::new(&bank, rows, cols)) {
        let mut stats = vec![0.0; 2 * bank.len()];
        check(bank_stats(&img, &plan, mode, cval, &mut s, &mut stats));
    }
});
