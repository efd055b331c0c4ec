//! GLCM never panics: any shape, distances, angles, levels, symmetry, properties,
//! pixel values; dense properties of any matrix (NaN and infinities included).
#![no_main]
use libfuzzer_sys::fuzz_target;

use _featrs::glcm::{cooccurrence, normalize, offsets, props_dense, props_from_pairs, props_grid, PairScratch, Prop, Spec};
use _featrs::tiles::tiles;

#[path = "input.rs"]
mod input;
use input::{check, pixels, Bytes};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let (rows, cols) = (b.size(40), b.size(40));
    let distances: Vec<f64> = (0..b.size(3)).map(|_| b.f64()).collect();
    let angles: Vec<f64> = (0..b.size(4)).map(|_| b.f64()).collect();
    let levels = b.size(300);
    let symmetric = b.u8() % 2 == 1;
    let props: Vec<Prop> = (0..b.size(4)).map(|_| Prop::ALL[b.u8() as usize % Prop::ALL.len()]).collect();
    let wrong_out = b.u8() % 8 == 0;
    let grid = b.size(6);
    let img = pixels(b.rest(), rows * cols);
    let Some(offs) = check(offsets(&distances, &angles)) else { return };
    let n_off = offs.len();
    let mut scratch = PairScratch::default();
    let mut out = vec![0.0; props.len() * n_off + wrong_out as usize];
    let mut unsure = vec![0u8; n_off];
    let spec = Spec { offsets: &offs, levels, symmetric, props: &props };
    let r = props_from_pairs(&img, rows, cols, &spec, &mut scratch, &mut out, &mut unsure);
    if check(r).is_some() {
        assert!(!wrong_out, "accepted an output of the wrong length");
    }
    if let Some(tiles) = check(tiles(rows, cols, grid)) {
        let mut out = vec![0.0; tiles.len() * props.len() * n_off];
        let mut unsure = vec![0u8; tiles.len() * n_off];
        check(props_grid(&img, rows, cols, &tiles, &spec, &mut scratch, &mut out, &mut unsure));
    }
    if levels <= 64 {
        let mut counts = vec![0u32; levels * levels * n_off];
        if check(cooccurrence(&img, rows, cols, &offs, levels, symmetric, &mut counts)).is_some() {
            let mut p = vec![0.0; counts.len()];
            check(normalize(&counts, n_off, &mut p));
            for prop in Prop::ALL {
                let (mut v, mut u) = (vec![0.0; n_off], vec![0u8; n_off]);
                check(props_dense(&counts, levels, n_off, prop, &mut v, &mut u));
                // Any float matrix, NaN and infinities included, is computed, not a crash.
                let noisy: Vec<f64> = p.iter().zip(img.iter().cycle()).map(|(&x, &k)| if k == 255 { f64::NAN } else { x * k as f64 }).collect();
                check(props_dense(&noisy, levels, n_off, prop, &mut v, &mut u));
            }
        }
    }
});
