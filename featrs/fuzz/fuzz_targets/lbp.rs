//! LBP never panics: any shape, P, radius (offsets rounded as skimage rounds them, or
//! arbitrary), method, pixel values or output length.
#![no_main]
use libfuzzer_sys::fuzz_target;

use _featrs::lbp::{histogram_grid, GridPlan, GridScratch, Lbp, Method};

#[path = "input.rs"]
mod input;
use input::{check, pixels, Bytes};

/// skimage's offsets: the circle of radius `r`, rounded to 5 decimals.
fn offsets(p: usize, r: f64) -> (Vec<f64>, Vec<f64>) {
    let round5 = |v: f64| (v * 1e5).round_ties_even() / 1e5;
    let a = |i: usize| 2.0 * std::f64::consts::PI * i as f64 / p as f64;
    ((0..p).map(|i| round5(-r * a(i).sin())).collect(), (0..p).map(|i| round5(r * a(i).cos())).collect())
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let (rows, cols) = (b.size(40), b.size(40));
    let p = b.size(70);
    let method = [Method::Default, Method::Ror, Method::Uniform, Method::NriUniform, Method::Var][b.u8() as usize % 5];
    let skimage_like = b.u8() % 4 != 0;
    let (rp, cp) = if skimage_like {
        let r = b.f64();
        offsets(p, r)
    } else {
        ((0..p).map(|_| b.f64()).collect(), (0..p).map(|_| b.f64()).collect())
    };
    let as_float = b.u8() % 3 == 0;
    let grid = b.size(6);
    let wrong_out = b.u8() % 8 == 0;
    let img = pixels(b.rest(), rows * cols);
    let Some(op) = check(Lbp::new(p, &rp, &cp, method)) else { return };
    let mut codes = vec![0.0; rows * cols + wrong_out as usize];
    let ok = if as_float {
        let f: Vec<f64> = img.iter().map(|&v| v as f64 / 3.0).collect();
        op.codes_into(&f, rows, cols, &mut codes)
    } else {
        op.codes_into(&img, rows, cols, &mut codes)
    };
    // Arbitrary offsets may be refused as not rounded like skimage's; rounded ones never are.
    let ok = if skimage_like { check(ok) } else { ok.ok() };
    if ok.is_some() {
        assert!(!wrong_out, "accepted an output of the wrong length");
    }
    // 2^P bins for default/ror: beyond 2^16 the fuzzer's memory limit, not the kernel, decides.
    if let Some(n_bins) = method.n_codes(p).filter(|&n| n <= 1 << 16) {
        let mut hist = vec![0.0; n_bins];
        let h = op.plan(rows, cols).and_then(|plan| op.histogram_with(&plan, &img, &mut hist));
        if let Some(()) = if skimage_like { check(h) } else { h.ok() } {
            let total: f64 = hist.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "histogram sums to {total}");
        }
    }
    // Per-tile histograms of this operator and a second one, through the fast path.
    if skimage_like && method.n_codes(p).is_some_and(|n| n <= 1 << 16) {
        let (rp2, cp2) = offsets(8, 1.0);
        let ops = vec![op, Lbp::new(8, &rp2, &cp2, method).unwrap()];
        if let Some(plan) = check(GridPlan::new(&ops, rows, cols, grid)) {
            let mut out = vec![0.0; plan.row_len()];
            check(histogram_grid(&ops, &plan, &img, &mut GridScratch::default(), &mut out));
        }
    }
});
