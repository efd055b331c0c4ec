//! HOG never panics: any shape, parameters, pixel values or output length.
#![no_main]
use libfuzzer_sys::fuzz_target;

use _featrs::hog::{hog_into, hog_shape, BlockNorm, HogParams, Image, Libm};

#[path = "input.rs"]
mod input;
use input::{check, pixels, Bytes};

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let (rows, cols, channels) = (b.size(48), b.size(48), b.size(3));
    let orientations = match b.u8() % 4 {
        0 => b.u16() as usize * 2,
        _ => b.size(40),
    };
    let cell = (b.size(20), b.size(20));
    let block = (b.size(5), b.size(5));
    let norm = [BlockNorm::L1, BlockNorm::L1Sqrt, BlockNorm::L2, BlockNorm::L2Hys][b.u8() as usize % 4];
    let p = HogParams { orientations, cell, block, norm, transform_sqrt: b.u8() % 2 == 1 };
    let kind = b.u8() % 3;
    let wrong_out = b.u8() % 8 == 0;
    let n = rows * cols * channels.max(1);
    let raw = pixels(b.rest(), n * 8);
    let len = match check(hog_shape(rows, cols, &p)) {
        Some(shape) => shape.len(&p),
        None => 0,
    };
    if len > 1 << 20 {
        return;
    }
    let mut out = vec![0.0; if wrong_out { len + 1 } else { len }];
    let result = match kind {
        0 => hog_into(Image::new(&raw[..n], rows, cols, channels), &p, &Libm, &mut out),
        1 => {
            let img: Vec<f32> = raw[..n].iter().map(|&v| v as f32 / 7.0 - 3.0).collect();
            hog_into(Image::new(&img, rows, cols, channels), &p, &Libm, &mut out)
        }
        _ => {
            let img: Vec<f64> = raw.chunks_exact(8).take(n).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
            hog_into(Image::new(&img, rows, cols, channels), &p, &Libm, &mut out)
        }
    };
    if check(result).is_some() {
        assert!(!wrong_out, "accepted an output of the wrong length");
    }
});
