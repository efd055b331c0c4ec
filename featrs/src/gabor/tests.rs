//! Unit tests of the Gabor kernels.
use super::*;
fn gabor(frequency: f64, theta: f64, sigma_x: f64, sigma_y: f64) -> Gabor {
    let (ct, st) = (theta.cos(), theta.sin());
    let half = |a: f64, b: f64| (3.0 * a).abs().max((3.0 * b).abs()).max(1.0).ceil() as usize;
    Gabor {
        frequency,
        sigma_x,
        sigma_y,
        cos_theta: ct,
        sin_theta: st,
        offset: 0.3,
        half_x: half(sigma_x * ct, sigma_y * st),
        half_y: half(sigma_y * ct, sigma_x * st),
    }
}

#[test]
fn extension_modes_follow_scipy() {
    let line = |mode: Mode| (-6..10).map(|i| mode.source(i, 4)).collect::<Vec<_>>();
    let some = |v: &[usize]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    for (mode, want) in [
        (Mode::Reflect, [2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1]),
        (Mode::Mirror, [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]),
        (Mode::Wrap, [2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]),
        (Mode::Nearest, [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 3]),
    ] {
        assert_eq!(line(mode), some(&want), "{mode:?}");
    }
    assert_eq!(Mode::Constant.source(-1, 4), None);
    assert_eq!(Mode::Mirror.source(-5, 1), Some(0));
}

#[test]
fn separable_equals_direct() {
    let (rows, cols) = (13, 11);
    let image: Vec<f64> = (0..rows * cols)
        .map(|k| ((k * 37) % 101) as f64 / 7.0)
        .collect();
    for (mode, theta) in [
        (Mode::Reflect, 0.4),
        (Mode::Constant, 2.0),
        (Mode::Wrap, -1.0),
        (Mode::Mirror, 0.0),
    ] {
        let g = gabor(0.2, theta, 2.3, 2.3);
        let mut s = GaborScratch::default();
        let (mut a_re, mut a_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
        filter(
            &image, rows, cols, &g, mode, 1.5, false, &mut s, &mut a_re, &mut a_im,
        )
        .unwrap();
        // Anisotropic by one ulp: forces the direct path on the same kernel.
        let g2 = Gabor {
            sigma_y: f64::from_bits(g.sigma_y.to_bits() + 1),
            ..g
        };
        let (mut b_re, mut b_im) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
        filter(
            &image, rows, cols, &g2, mode, 1.5, false, &mut s, &mut b_re, &mut b_im,
        )
        .unwrap();
        let max = b_re.iter().chain(&b_im).fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in a_re.iter().zip(&b_re).chain(a_im.iter().zip(&b_im)) {
            assert!((a - b).abs() <= 1e-12 * max, "{mode:?}: {a} vs {b}");
        }
    }
}

#[test]
fn absurd_parameters_are_errors() {
    assert!(gabor(-0.1, 0.0, 1.0, 1.0).check().is_err());
    assert!(gabor(0.0, 0.0, 1.0, 1.0).check().is_ok(), "frequency 0: a plain Gaussian, as scikit-image allows");
    assert!(Gabor {
        half_x: 1 << 20,
        half_y: 1 << 20,
        ..gabor(0.1, 0.0, 1.0, 1.0)
    }
    .check()
    .is_err());
    assert!(gabor(0.1, f64::NAN, 1.0, 1.0).check().is_err());
}
