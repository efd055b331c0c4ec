//! Unit tests of the LBP kernel.
use super::*;
use super::grid::{histogram_grid, GridPlan, GridScratch};

fn offsets(p: usize, r: f64) -> (Vec<f64>, Vec<f64>) {
    let round5 = |v: f64| (v * 1e5).round_ties_even() / 1e5;
    let a = |i: usize| 2.0 * std::f64::consts::PI * i as f64 / p as f64;
    ((0..p).map(|i| round5(-r * a(i).sin())).collect(), (0..p).map(|i| round5(r * a(i).cos())).collect())
}

/// The codes of `img` (`rows x cols`) under a `(p, r)` operator.
fn codes(p: usize, r: f64, method: Method, img: &[u8], rows: usize, cols: usize) -> Vec<f64> {
    let (rp, cp) = offsets(p, r);
    let mut out = vec![0.0; rows * cols];
    Lbp::new(p, &rp, &cp, method).unwrap().codes_into(img, rows, cols, &mut out).unwrap();
    out
}

#[test]
fn uniform_codes_count_ones_of_uniform_patterns() {
    assert_eq!(code(0b0000_0000, 8, Method::Uniform), 0);
    assert_eq!(code(0b0011_1000, 8, Method::Uniform), 3);
    assert_eq!(code(0b1111_1111, 8, Method::Uniform), 8);
    assert_eq!(code(0b0101_0000, 8, Method::Uniform), 9);
    // The wrap-around change between bits 7 and 0 is not counted by skimage.
    assert_eq!(code(0b1000_0001, 8, Method::Uniform), 2);
}

#[test]
fn ror_is_the_smallest_rotation() {
    assert_eq!(code(0b1000_0000, 8, Method::Ror), 1);
    assert_eq!(code(0b1100_0001, 8, Method::Ror), 0b0000_0111);
}

#[test]
fn nri_uniform_codes_are_distinct_for_uniform_patterns() {
    let p = 8;
    let mut seen = std::collections::HashSet::new();
    for m in 0u64..256 {
        let c = code(m, p, Method::NriUniform);
        assert!(c as usize <= p * (p - 1) + 2);
        if c as usize != p * (p - 1) + 2 {
            assert!(seen.insert(c), "code {c} reused by {m:#010b}");
        }
    }
    assert_eq!(seen.len(), p * (p - 1) + 2);
}

#[test]
fn integral_offsets_compare_pixels_directly() {
    let out = codes(4, 1.0, Method::Default, &[5u8; 3 * 3], 3, 3);
    // Neighbours: 0 right, 1 up, 2 left, 3 down; outside the image reads zero.
    assert_eq!(out[4], 15.0);
    assert_eq!(out[0], ((1 << 0) | (1 << 3)) as f64);
    assert_eq!(out[8], ((1 << 1) | (1 << 2)) as f64);
}

#[test]
fn zero_image_sets_every_bit() {
    let out = codes(8, 2.5, Method::Default, &[0u8; 7 * 6], 7, 6);
    assert!(out.iter().all(|&v| v == 255.0));
}

#[test]
fn huge_radius_reads_only_zeros() {
    let out = codes(4, 1e6, Method::Default, &[0, 1, 2, 0], 2, 2);
    assert_eq!(out, vec![15.0, 0.0, 0.0, 15.0]);
}

#[test]
fn histogram_sums_to_one() {
    let (rp, cp) = offsets(8, 1.5);
    let lbp = Lbp::new(8, &rp, &cp, Method::Uniform).unwrap();
    let img: Vec<u8> = (0..37 * 41).map(|i| ((i * 7919) % 251) as u8).collect();
    let mut h = vec![0.0; 10];
    lbp.histogram_with(&lbp.plan(37, 41).unwrap(), &img, &mut h).unwrap();
    assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn bad_parameters_are_value_errors() {
    assert!(Lbp::new(0, &[], &[], Method::Uniform).is_err());
    let (rp, cp) = offsets(32, 1.0);
    assert!(Lbp::new(32, &rp, &cp, Method::Default).is_err());
    assert!(Lbp::new(32, &rp, &cp, Method::Uniform).is_ok());
    assert!(Lbp::new(2, &[0.0, f64::NAN], &[1.0, 0.0], Method::Uniform).is_err());
}

/// A deterministic image with flat patches (near-zero comparisons) and a black border.
fn textured(rows: usize, cols: usize) -> Vec<u8> {
    (0..rows * cols)
        .map(|k| {
            let (r, c) = (k / cols, k % cols);
            if r < 3 || c < 2 {
                0
            } else if (5..15).contains(&r) && (4..20).contains(&c) {
                90
            } else {
                ((k * 7919 + r * 31) % 251) as u8
            }
        })
        .collect()
}

#[test]
fn fast_grid_equals_exact_histograms_per_tile() {
    let (rows, cols) = (37, 41);
    let img = textured(rows, cols);
    for (method, pairs) in [
        (Method::Uniform, vec![(8, 1.0), (16, 2.0), (24, 3.0)]),
        (Method::NriUniform, vec![(8, 1.5)]),
        (Method::Default, vec![(8, 1.0), (12, 2.5)]),
        (Method::Ror, vec![(6, 1.0)]),
    ] {
        let ops: Vec<Lbp> = pairs.iter().map(|&(p, r)| {
            let (rp, cp) = offsets(p, r);
            Lbp::new(p, &rp, &cp, method).unwrap()
        }).collect();
        assert_grid_equals_exact_tiles(&ops, &img, rows, cols, &format!("{method:?}"));
    }
}

/// The multi-radius grid pass over `img` equals each operator's exact histogram of each tile.
fn assert_grid_equals_exact_tiles(ops: &[Lbp], img: &[u8], rows: usize, cols: usize, label: &str) {
    for grid in [1, 2, 3] {
        let plan = GridPlan::new(ops, rows, cols, grid).unwrap();
        let mut out = vec![0.0; plan.row_len()];
        histogram_grid(ops, &plan, img, &mut GridScratch::default(), &mut out).unwrap();
        let mut at = 0;
        for op in ops {
            for t in crate::tiles::tiles(rows, cols, grid).unwrap() {
                let tile: Vec<u8> = (t.r0..t.r1).flat_map(|r| img[r * cols + t.c0..r * cols + t.c1].to_vec()).collect();
                let n = op.method().n_codes(op.points()).unwrap();
                let mut exact = vec![0.0; n];
                op.histogram_with(&op.plan(t.r1 - t.r0, t.c1 - t.c0).unwrap(), &tile, &mut exact).unwrap();
                assert_eq!(&out[at..at + n], &exact[..], "{label} P={} grid={grid} tile={t:?}", op.points());
                at += n;
            }
        }
        assert_eq!(at, out.len());
    }
}

#[test]
fn fast_plan_declines_what_it_cannot_do_exactly() {
    let (rp, cp) = offsets(8, 1.0);
    let var = Lbp::new(8, &rp, &cp, Method::Var).unwrap();
    assert!(var.fast_plan(10, 10, 4).unwrap().is_none());
    let (rp, cp) = offsets(40, 3.0);
    let wide = Lbp::new(40, &rp, &cp, Method::Uniform).unwrap();
    assert!(wide.fast_plan(10, 10, 8).unwrap().is_none());
    let (rp, cp) = offsets(8, 2.0);
    let op = Lbp::new(8, &rp, &cp, Method::Uniform).unwrap();
    assert!(op.fast_plan(10, 10, 1).unwrap().is_none(), "padding smaller than the reach");
    assert!(op.fast_plan(0, 10, 4).is_err());
}

/// Plateaus of several grey levels with steps and single-pixel specks: most
/// neighbourhoods are flat or flat on one side (the comparisons closest to zero).
fn plateaus(rows: usize, cols: usize) -> Vec<u8> {
    (0..rows * cols)
        .map(|k| {
            let (r, c) = (k / cols, k % cols);
            if (r * 13 + c * 7) % 97 == 0 {
                ((k * 7919) % 256) as u8
            } else {
                [0u8, 1, 40, 41, 200, 255][(r / 6 + c / 9) % 6]
            }
        })
        .collect()
}

#[test]
fn fast_grid_equals_exact_histograms_on_plateaus() {
    let (rows, cols) = (61, 53);
    let img = plateaus(rows, cols);
    // Radii whose weights include 0.5 (R = 3 at 30 degrees) and odd ones.
    let pairs = [(8, 1.0), (16, 2.0), (24, 3.0), (8, 1.5), (12, 2.5), (32, 4.0)];
    let ops: Vec<Lbp> = pairs.iter().map(|&(p, r)| {
        let (rp, cp) = offsets(p, r);
        Lbp::new(p, &rp, &cp, Method::Uniform).unwrap()
    }).collect();
    assert_grid_equals_exact_tiles(&ops, &img, rows, cols, "plateaus");
}

#[test]
fn default_neighbours_may_skip_flat_samples() {
    // The shortcut the AVX-512 block takes must apply at the product's defaults, or it
    // would silently cost nothing and save nothing.
    for (p, r) in [(8, 1.0), (16, 2.0), (24, 3.0)] {
        let (rp, cp) = offsets(p, r);
        let op = Lbp::new(p, &rp, &cp, Method::Uniform).unwrap();
        for side in [85, 86, 170, 171] {
            let plan = op.fast_plan(side, side, op.fast_pad(side, side)).unwrap().unwrap();
            assert!(plan.all_flat_sets, "P={p} R={r} side={side}");
        }
    }
}

#[test]
fn shared_plans_are_reused_only_for_the_same_operators_shape_and_grid() {
    let ops = |r: f64| -> Vec<Lbp> {
        [(8, r), (16, 2.0 * r)].iter().map(|&(p, r)| {
            let (rp, cp) = offsets(p, r);
            Lbp::new(p, &rp, &cp, Method::Uniform).unwrap()
        }).collect()
    };
    let (a, b) = (ops(1.0), ops(1.0));
    let first = GridPlan::shared(&a, 29, 31, 2).unwrap();
    // Equal operators built apart share the plan; any other radius, shape or grid does not.
    assert!(std::sync::Arc::ptr_eq(&first, &GridPlan::shared(&b, 29, 31, 2).unwrap()));
    for other in [GridPlan::shared(&ops(1.5), 29, 31, 2), GridPlan::shared(&a, 31, 29, 2),
                  GridPlan::shared(&a, 29, 31, 3)] {
        assert!(!std::sync::Arc::ptr_eq(&first, &other.unwrap()));
    }
    // A shared plan gives the numbers of a fresh one.
    let img = textured(29, 31);
    let (mut shared, mut fresh) = (vec![0.0; first.row_len()], vec![0.0; first.row_len()]);
    histogram_grid(&a, &first, &img, &mut GridScratch::default(), &mut shared).unwrap();
    let plan = GridPlan::new(&a, 29, 31, 2).unwrap();
    histogram_grid(&a, &plan, &img, &mut GridScratch::default(), &mut fresh).unwrap();
    assert_eq!(shared, fresh);
    // Bad operators still fail, and are never kept.
    assert!(GridPlan::shared(&[], 29, 31, 2).is_err());
}

#[test]
fn flagged_columns_lists_every_flagged_column_in_order_at_every_length() {
    // Lengths around whole blocks of 16 and flag densities from none to all.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 171, 256] {
        for density in [0u64, 1, 3, 8] {
            let near: Vec<u32> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed % 8 < density { (seed >> 32) as u32 | 1 } else { 0 }
                })
                .collect();
            let want: Vec<u32> = (0..len as u32).filter(|&c| near[c as usize] != 0).collect();
            let mut flagged = vec![u32::MAX; len];
            let n = fast::flagged_columns(&near, &mut flagged);
            assert_eq!(&flagged[..n], &want[..], "len {len}, density {density}");
            let mut portable = vec![u32::MAX; len];
            let m = fast::flagged_columns_portable(&near, &mut portable);
            assert_eq!(&portable[..m], &want[..], "portable: len {len}, density {density}");
        }
    }
}
