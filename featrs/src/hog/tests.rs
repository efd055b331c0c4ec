//! Unit tests of the HOG kernel.
use super::bins::*;
use super::*;
use crate::error::FeatError;
fn params(n: usize) -> HogParams {
    HogParams { orientations: n, cell: (8, 8), block: (2, 2), norm: BlockNorm::L2Hys, transform_sqrt: false }
}

#[test]
fn approximate_angle_is_within_guard() {
    let mut worst = 0f64;
    for i in -300..=300 {
        for j in -300..=300 {
            let (gy, gx) = (i as f64 * 0.37, j as f64 * 1.13);
            if gy == 0.0 && gx == 0.0 {
                continue;
            }
            let exact = gy.atan2(gx).to_degrees().rem_euclid(180.0);
            let approx = approx_orientation(gy as f32, gx as f32) as f64;
            // Compare on the circle of orientations (0 == 180).
            let d = (exact - approx).abs();
            worst = worst.max(d.min(180.0 - d));
        }
    }
    assert!(worst < GUARD_DEG / 2.0, "worst error {worst} degree");
}

#[test]
fn fast_bins_equal_exact_bins_on_integer_gradients() {
    for n in [1, 2, 4, 7, 8, 9, 12, 36] {
        let bins = Bins::new(n);
        for gy in -255..=255 {
            for gx in -255..=255 {
                if gy == 0 && gx == 0 {
                    continue;
                }
                let (gy, gx) = (gy as f64, gx as f64);
                assert_eq!(
                    bins.bin(gy, gx),
                    bins.exact_bin(exact_orientation(gy, gx)),
                    "n={n} gy={gy} gx={gx}"
                );
            }
        }
    }
}

#[test]
fn byte_table_equals_the_computed_bins() {
    for n in [1, 3, 9, 16, 253] {
        let bins = Bins::new(n);
        let table = byte_gradient_bins(n).unwrap();
        for gy in -255..=255 {
            for gx in -255..=255 {
                let (gy, gx) = (gy as f64, gx as f64);
                let expected = if gy == 0.0 && gx == 0.0 { NO_BIN } else { bins.bin(gy, gx) };
                let mut at = [0u32];
                bins.table_row(&[gx], &[gy], &mut [0.0], &mut at);
                let got = match table[at[0] as usize] {
                    TABLE_ZERO => NO_BIN,
                    TABLE_SLOW => bins.bin(gy, gx),
                    k => k as u32,
                };
                assert_eq!(got, expected, "n={n} gy={gy} gx={gx}");
            }
        }
    }
    assert!(byte_gradient_bins(254).is_none());
}

#[test]
fn fast_row_bins_equal_exact_bins() {
    let bins = Bins::new(9);
    let gx: Vec<f64> = (0..2000).map(|i| ((i * 7919) % 1013) as f64 * 0.37 - 180.0).collect();
    let gy: Vec<f64> = (0..2000).map(|i| ((i * 104_729) % 997) as f64 * 0.41 - 200.0).collect();
    let (mut mag, mut bin) = (vec![0.0; 2000], vec![0u32; 2000]);
    bins.bin_row(&gx, &gy, &mut mag, &mut bin);
    for i in 0..2000 {
        let expected = bins.exact_bin(exact_orientation(gy[i], gx[i]));
        let got = if bin[i] == UNSETTLED { bins.bin(gy[i], gx[i]) & !ON_BOUNDARY } else { bin[i] };
        assert_eq!(got, expected, "gy={} gx={}", gy[i], gx[i]);
    }
}

/// An oracle that puts every boundary gradient at a fixed angle and counts calls.
struct FixedOracle(f64, std::sync::atomic::AtomicUsize);

impl Oracle for FixedOracle {
    fn orientations(&self, gy: &[f64], _: &[f64]) -> Result<Vec<f64>> {
        self.1.fetch_add(gy.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(vec![self.0; gy.len()])
    }
    fn magnitudes(&self, gr: &[f64], gc: &[f64], single: bool) -> Result<Vec<f64>> {
        Libm.magnitudes(gr, gc, single)
    }
}

/// A 16 x 16 image whose pixel (4, 4) has the gradient (sqrt(3) - 3, 1 - sqrt(3)) under
/// transform_sqrt: 60 degrees in exact arithmetic, a boundary for 9 orientations.
fn sixty_degree_image() -> Vec<f64> {
    let mut img = vec![0.0f64; 16 * 16];
    img[3 * 16 + 4] = 9.0; // up
    img[5 * 16 + 4] = 3.0; // down
    img[4 * 16 + 3] = 3.0; // left
    img[4 * 16 + 5] = 1.0; // right
    img
}

#[test]
fn the_oracle_decides_gradients_on_a_boundary() {
    let mut p = params(9);
    p.block = (1, 1);
    p.norm = BlockNorm::L1;
    p.transform_sqrt = true;
    let img = sixty_degree_image();
    let mut out = vec![0.0; 4 * 9];
    for (angle, bin) in [(59.0, 2), (61.0, 3)] {
        let oracle = FixedOracle(angle, Default::default());
        hog_into(Image::new(&img, 16, 16, 1), &p, &oracle, &mut out).unwrap();
        assert_eq!(oracle.1.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Cell (0, 0) holds the pixel; its other gradients are axis-aligned (bins 0, 4).
        let cell = &out[..9];
        assert!(cell[bin] > 0.0, "angle {angle}: {cell:?}");
        assert_eq!(cell[5 - bin], 0.0, "angle {angle}: {cell:?}");
    }
}

/// An oracle whose hypot prefers the last of equal channels.
struct LastChannelOracle;

impl Oracle for LastChannelOracle {
    fn orientations(&self, gy: &[f64], gx: &[f64]) -> Result<Vec<f64>> {
        Libm.orientations(gy, gx)
    }
    fn magnitudes(&self, gr: &[f64], _: &[f64], _: bool) -> Result<Vec<f64>> {
        // Pixels come with 2 channels each: make the second one win.
        Ok((0..gr.len()).map(|i| (i % 2) as f64).collect())
    }
}

#[test]
fn the_oracle_decides_channel_ties() {
    // Channel 0 has a vertical edge, channel 1 a horizontal one of the same strength.
    let mut img = vec![0u8; 16 * 16 * 2];
    for y in 0..16 {
        for x in 0..16 {
            img[(y * 16 + x) * 2] = if x >= 8 { 100 } else { 0 };
            img[(y * 16 + x) * 2 + 1] = if y >= 8 { 100 } else { 0 };
        }
    }
    let mut p = params(4);
    p.block = (1, 1);
    p.norm = BlockNorm::L1;
    let mut numpy_like = vec![0.0; 4 * 4];
    let mut last = vec![0.0; 4 * 4];
    hog_into(Image::new(&img, 16, 16, 2), &p, &Libm, &mut numpy_like).unwrap();
    hog_into(Image::new(&img, 16, 16, 2), &p, &LastChannelOracle, &mut last).unwrap();
    // Pixel (7, 7) and its neighbours on both edges tie: the first channel (0 degrees,
    // bin 0) wins with Libm, the second (90 degrees, bin 2) with the other oracle.
    assert!(numpy_like[0] > last[0]);
    assert!(numpy_like[2] < last[2]);
}

#[test]
fn orientation_modulo_follows_numpy() {
    assert_eq!(exact_orientation(0.0, -1.0), 0.0);
    assert_eq!(exact_orientation(-0.0, -1.0), 0.0);
    assert_eq!(exact_orientation(1.0, 0.0), 90.0);
    assert_eq!(exact_orientation(-1.0, 0.0), 90.0);
    // A tiny negative angle rounds to 180 after the shift: outside every bin.
    let o = exact_orientation(-1e-300, 1.0);
    assert_eq!(o, 180.0);
    assert_eq!(Bins::new(9).exact_bin(o), NO_BIN);
}

#[test]
fn too_small_image_is_a_value_error() {
    let e = hog_shape(15, 40, &params(9)).unwrap_err();
    assert!(matches!(e, FeatError::Value(ref m) if m.contains("at least: 16 rows and 16 cols")));
    assert!(hog_shape(16, 16, &params(9)).is_ok());
    assert!(hog_shape(64, 64, &params(0)).is_err());
}

#[test]
fn vertical_edge_votes_into_the_zero_degree_bin() {
    // Columns 0..8 dark, 8..16 bright: horizontal gradient of 200 at columns 7 and 8.
    let img: Vec<u8> = (0..16 * 16).map(|i| if i % 16 >= 8 { 200 } else { 0 }).collect();
    let mut p = params(9);
    p.block = (1, 1);
    p.norm = BlockNorm::L1;
    let shape = hog_shape(16, 16, &p).unwrap();
    let mut out = vec![0.0; shape.len(&p)];
    hog_into(Image::new(&img, 16, 16, 1), &p, &Libm, &mut out).unwrap();
    for (cell, v) in out.chunks(9).enumerate() {
        assert!(v[0] > 0.99, "cell {cell}: {v:?}");
        assert!(v[1..].iter().all(|&x| x == 0.0), "cell {cell}: {v:?}");
    }
}

#[test]
fn non_finite_pixels_are_rejected() {
    let mut img = vec![1.0f64; 16 * 16];
    img[17] = f64::NAN;
    let p = params(9);
    let mut out = vec![0.0; 36];
    let e = hog_into(Image::new(&img, 16, 16, 1), &p, &Libm, &mut out).unwrap_err();
    assert!(matches!(e, FeatError::Value(ref m) if m.contains("row 1, col 1")));
}
