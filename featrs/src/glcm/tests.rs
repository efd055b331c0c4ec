//! Unit tests of the GLCM kernels.
use super::*;

const EXAMPLE: [u8; 16] = [0, 0, 1, 1, 0, 0, 1, 1, 0, 2, 2, 2, 2, 2, 3, 3];

#[test]
fn offsets_round_half_away_from_zero() {
    assert_eq!(
        offsets(&[0.5, -0.5, 1.0], &[0.0]).unwrap(),
        vec![(0, 1), (0, -1), (0, 1)]
    );
    let o = offsets(
        &[1.0],
        &[
            std::f64::consts::FRAC_PI_2,
            3.0 * std::f64::consts::FRAC_PI_4,
        ],
    )
    .unwrap();
    assert_eq!(o, vec![(1, 0), (1, -1)]);
    assert!(offsets(&[f64::NAN], &[0.0]).is_err());
    assert_eq!(pair_window(4, 4, i64::MAX, 0), (0, 0, 0, 0));
    assert_eq!(pair_window(4, 4, i64::MIN, 0), (0, 0, 0, 0));
}

#[test]
fn skimage_docstring_example() {
    let angles = [
        0.0,
        std::f64::consts::FRAC_PI_4,
        std::f64::consts::FRAC_PI_2,
        3.0 * std::f64::consts::FRAC_PI_4,
    ];
    let off = offsets(&[1.0], &angles).unwrap();
    let mut p = vec![0u32; 4 * 4 * 4];
    cooccurrence(&EXAMPLE, 4, 4, &off, 4, false, &mut p).unwrap();
    let cell = |i: usize, j: usize, a: usize| p[(i * 4 + j) * 4 + a];
    let angle0: Vec<u32> = (0..16).map(|k| cell(k / 4, k % 4, 0)).collect();
    assert_eq!(angle0, vec![2, 2, 1, 0, 0, 2, 0, 0, 0, 0, 3, 1, 0, 0, 0, 1]);
    let angle3: Vec<u32> = (0..16).map(|k| cell(k / 4, k % 4, 3)).collect();
    assert_eq!(angle3, vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 1, 0, 0, 0, 0]);
}

#[test]
fn pair_props_match_dense_props() {
    let off = offsets(&[1.0, 2.0], &[0.0, std::f64::consts::FRAC_PI_2]).unwrap();
    let all = Prop::ALL;
    for symmetric in [false, true] {
        let mut p = vec![0u32; 4 * 4 * off.len()];
        cooccurrence(&EXAMPLE, 4, 4, &off, 4, symmetric, &mut p).unwrap();
        let mut scratch = PairScratch::default();
        let mut fast = vec![0.0; all.len() * off.len()];
        let mut unsure = vec![0u8; off.len()];
        let spec = Spec { offsets: &off, levels: 4, symmetric, props: &all };
        props_from_pairs(&EXAMPLE, 4, 4, &spec, &mut scratch, &mut fast, &mut unsure).unwrap();
        assert!(scratch.table.iter().all(|&c| c == 0));
        for (k, &prop) in all.iter().enumerate() {
            let mut dense = vec![0.0; off.len()];
            let mut u = vec![0u8; off.len()];
            props_dense(&p, 4, off.len(), prop, &mut dense, &mut u).unwrap();
            for o in 0..off.len() {
                let f = fast[k * off.len() + o];
                assert!(
                    (f - dense[o]).abs() <= 1e-12 * dense[o].abs().max(1.0),
                    "{prop:?} {o}: {f} vs {}",
                    dense[o]
                );
            }
        }
    }
}

#[test]
fn values_at_or_above_levels_are_rejected() {
    let mut p = vec![0u32; 9];
    assert!(cooccurrence(&[3u8, 1], 1, 2, &[(0, 1)], 3, false, &mut p).is_err());
}

#[test]
fn few_levels_props_equal_dense_props_on_tiles() {
    use super::small::{props_small, SmallScratch, View};
    let (rows, cols, levels) = (23, 29, 8usize);
    let img: Vec<u8> = (0..rows * cols).map(|k| if k % cols < 6 { 3 } else { ((k * 37 + k / cols) % levels) as u8 }).collect();
    let all = Prop::ALL;
    let off = offsets(&[1.0, 3.0], &[0.0, std::f64::consts::FRAC_PI_4, 2.0]).unwrap();
    for symmetric in [false, true] {
        for t in crate::tiles::tiles(rows, cols, 2).unwrap() {
            let (h, w) = (t.r1 - t.r0, t.c1 - t.c0);
            let tile: Vec<u8> = (t.r0..t.r1).flat_map(|r| img[r * cols + t.c0..r * cols + t.c1].to_vec()).collect();
            let view = View { data: &img[t.r0 * cols + t.c0..], rows: h, cols: w, stride: cols };
            let mut fast = vec![0.0; all.len() * off.len()];
            let mut unsure = vec![0u8; off.len()];
            let spec = Spec { offsets: &off, levels, symmetric, props: &all };
            props_small(&view, &spec, &mut SmallScratch::default(), &mut fast, &mut unsure).unwrap();
            let mut p = vec![0u32; levels * levels * off.len()];
            cooccurrence(&tile, h, w, &off, levels, symmetric, &mut p).unwrap();
            for (k, &prop) in all.iter().enumerate() {
                let (mut dense, mut u) = (vec![0.0; off.len()], vec![0u8; off.len()]);
                props_dense(&p, levels, off.len(), prop, &mut dense, &mut u).unwrap();
                for o in 0..off.len() {
                    let f = fast[k * off.len() + o];
                    assert!((f - dense[o]).abs() <= 1e-12 * dense[o].abs().max(1.0), "{prop:?} {t:?} {o}: {f} vs {}", dense[o]);
                }
            }
        }
    }
}

#[test]
fn tiles_follow_numpy_linspace() {
    use crate::tiles::{edges, tiles};
    assert_eq!(edges(256, 3), vec![0, 85, 170, 256]);
    assert_eq!(edges(256, 2), vec![0, 128, 256]);
    assert_eq!(edges(10, 4), vec![0, 2, 5, 7, 10]);
    assert_eq!(tiles(5, 9, 1).unwrap().len(), 1);
    assert!(tiles(5, 9, 6).is_err());
    assert!(tiles(5, 9, 0).is_err());
}

#[test]
fn few_levels_repeated_offsets_equal_dense_props() {
    // The product's defaults: d = 1 and d = 2 round to the same offsets at 45 and 135
    // degrees, which the few-levels path counts once and copies.
    use super::small::{props_small, SmallScratch, View};
    let (rows, cols, levels) = (40, 37, 32usize);
    let img: Vec<u8> = (0..rows * cols).map(|k| if k / cols < 9 { 0 } else { ((k * 131 + k / cols * 7) % levels) as u8 }).collect();
    let q = std::f64::consts::FRAC_PI_4;
    let off = offsets(&[1.0, 2.0, 4.0, 8.0], &[0.0, q, 2.0 * q, 3.0 * q]).unwrap();
    assert_eq!(off[1], off[5], "d = 1 and d = 2 at 45 degrees are one offset");
    let all = Prop::ALL;
    for symmetric in [false, true] {
        let view = View { data: &img, rows, cols, stride: cols };
        let mut fast = vec![0.0; all.len() * off.len()];
        let mut unsure = vec![0u8; off.len()];
        let spec = Spec { offsets: &off, levels, symmetric, props: &all };
        props_small(&view, &spec, &mut SmallScratch::default(), &mut fast, &mut unsure).unwrap();
        let mut p = vec![0u32; levels * levels * off.len()];
        cooccurrence(&img, rows, cols, &off, levels, symmetric, &mut p).unwrap();
        for (k, &prop) in all.iter().enumerate() {
            let (mut dense, mut u) = (vec![0.0; off.len()], vec![0u8; off.len()]);
            props_dense(&p, levels, off.len(), prop, &mut dense, &mut u).unwrap();
            for o in 0..off.len() {
                let f = fast[k * off.len() + o];
                assert!((f - dense[o]).abs() <= 1e-12 * dense[o].abs().max(1.0), "{prop:?} {o}: {f} vs {}", dense[o]);
            }
        }
        assert_eq!(unsure[1], unsure[5]);
    }
}
