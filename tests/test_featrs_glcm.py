"""featrs' GLCM against scikit-image: identical counts, properties within 1e-9.

Tolerance: ``|featrs - skimage| <= 1e-9 * max|skimage| + 1e-12`` over each compared
array. The absolute 1e-12 covers values that are exactly 0 where scikit-image reports
rounding noise (e.g. ``std`` of a constant marginal: featrs 0, scikit-image 8.9e-16).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.feature import graycomatrix as sk_graycomatrix
from skimage.feature import graycoprops as sk_graycoprops

import featrs
from featrs import reference

PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM",
         "mean", "variance", "std", "entropy")
ANGLES4 = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
RTOL = 1e-9
ATOL = 1e-12

HYPOTHESIS = settings(max_examples=25, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_close(ours, ref):
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    np.testing.assert_allclose(ours, ref, rtol=0, atol=RTOL * scale + ATOL)


def real_images(root: Path, count: int = 6) -> list[np.ndarray]:
    """Grayscale dataset images; every other one resized to an odd size."""
    files = sorted(p for p in (root / "train").glob("*/*") if p.suffix.lower() in (".png", ".jpg"))
    picks = files[:: max(1, len(files) // count)][:count]
    odd_sizes = [(127, 131), (65, 63), (31, 29)]
    images = []
    for k, path in enumerate(picks):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert img is not None, path
        if k % 2:
            h, w = odd_sizes[(k // 2) % len(odd_sizes)]
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        images.append(img)
    return images


# --- graycomatrix ---------------------------------------------------------------------

@pytest.mark.realdata
def test_graycomatrix_and_props_on_real_images(real_data):
    distances = [1, 2, 5]
    angles = ANGLES4 + [2.0]
    for img in real_images(real_data):
        for symmetric in (False, True):
            for normed in (False, True):
                ours = featrs.graycomatrix(img, distances, angles, symmetric=symmetric, normed=normed)
                ref = sk_graycomatrix(img, distances, angles, symmetric=symmetric, normed=normed)
                assert ours.dtype == ref.dtype
                np.testing.assert_array_equal(ours, ref)
                for prop in PROPS:
                    assert_close(featrs.graycoprops(ref, prop), sk_graycoprops(ref, prop))


@pytest.mark.realdata
def test_batch_matches_reference_on_real_images(real_data):
    images = np.stack([cv2.resize(img, (67, 61), interpolation=cv2.INTER_AREA)
                       for img in real_images(real_data)])
    for kwargs in ({}, dict(props=PROPS, distances=(1, 3), symmetric=False),
                   dict(props=PROPS, angles=(0.0, 1.0, -2.5), normed=False)):
        ours = featrs.glcm_props_batch(images, **kwargs)
        ref = reference.glcm_props_batch(images, **kwargs)
        assert ours.shape == ref.shape
        for col in range(ref.shape[1]):
            assert_close(ours[:, col], ref[:, col])


def test_docstring_example():
    image = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 2, 2], [2, 2, 3, 3]], dtype=np.uint8)
    ours = featrs.graycomatrix(image, [1], ANGLES4, levels=4)
    np.testing.assert_array_equal(ours, sk_graycomatrix(image, [1], ANGLES4, levels=4))
    np.testing.assert_array_equal(ours[:, :, 0, 0], [[2, 2, 1, 0], [0, 2, 0, 0], [0, 0, 3, 1], [0, 0, 0, 1]])
    g = featrs.graycomatrix(image, [1, 2], [0, np.pi / 2], levels=4, normed=True, symmetric=True)
    np.testing.assert_allclose(featrs.graycoprops(g, "contrast"), [[0.58333333, 1.0], [1.25, 2.75]])


@st.composite
def glcm_cases(draw):
    h = draw(st.integers(1, 40)) * 2 - 1 if draw(st.booleans()) else draw(st.integers(1, 301))
    w = draw(st.integers(1, 301)) if h < 100 else draw(st.integers(1, 60)) * 2 + 1
    dtype = draw(st.sampled_from([np.uint8, np.uint8, np.uint16, np.int32, np.int8, np.uint64]))
    max_level = {np.int8: 127}.get(dtype, 255)
    top = draw(st.integers(0, max_level))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    smooth = draw(st.booleans())
    if smooth:  # flat regions and runs, like CT background
        img = np.repeat(rng.integers(0, top + 1, (h, (w + 7) // 8)), 8, axis=1)[:, :w]
    else:
        img = rng.integers(0, top + 1, (h, w))
    img = img.astype(dtype)
    levels = None if dtype in (np.uint8, np.int8) and draw(st.booleans()) else top + 1 + draw(st.integers(0, 3))
    distances = draw(st.lists(st.sampled_from([0, 1, 1, 2, 3, 0.5, -0.5, 1.5, -2, 7, 350]), min_size=1, max_size=3))
    angles = draw(st.lists(st.floats(-7, 7, allow_nan=False), min_size=1, max_size=3)
                  | st.just(ANGLES4))
    return img, distances, angles, levels, draw(st.booleans()), draw(st.booleans())


@HYPOTHESIS
@given(glcm_cases())
def test_graycomatrix_and_props_match_skimage(case):
    img, distances, angles, levels, symmetric, normed = case
    ours = featrs.graycomatrix(img, distances, angles, levels=levels, symmetric=symmetric, normed=normed)
    ref = sk_graycomatrix(img, distances, angles, levels=levels, symmetric=symmetric, normed=normed)
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)
    for prop in PROPS:
        assert_close(featrs.graycoprops(ref, prop), sk_graycoprops(ref, prop))


@HYPOTHESIS
@given(glcm_cases(), st.sampled_from([1, 2, 3]))
def test_batch_matches_reference(case, n_images):
    img, distances, angles, levels, symmetric, normed = case
    img = (img.astype(np.int64) % 256).astype(np.uint8)
    rng = np.random.default_rng(img.size)
    stack = np.stack([img] + [rng.permutation(img.ravel()).reshape(img.shape) for _ in range(n_images - 1)])
    levels = None if levels is None else max(levels, int(stack.max()) + 1)
    kwargs = dict(distances=distances, angles=angles, levels=levels, symmetric=symmetric, normed=normed,
                  props=PROPS)
    ours = featrs.glcm_props_batch(stack, n_threads=2, **kwargs)
    ref = reference.glcm_props_batch(stack, **kwargs)
    assert ours.shape == ref.shape
    for col in range(ref.shape[1]):
        assert_close(ours[:, col], ref[:, col])


def test_props_of_float_and_arbitrary_matrices():
    rng = np.random.default_rng(7)
    for P in (rng.random((5, 5, 2, 3)), rng.integers(0, 9, (7, 7, 1, 1)).astype(np.int16),
              np.zeros((3, 3, 1, 2)), rng.random((4, 4, 1, 1)).astype(np.float32)):
        for prop in PROPS:
            assert_close(featrs.graycoprops(P, prop), sk_graycoprops(P, prop))


def _term_by_term(P, prop):
    """graycoprops over every cell in C order, sums left to right: featrs' arithmetic
    before it skipped zero cells, so the two must agree to the bit."""
    L, _, D, A = P.shape
    cells = P.astype(np.float64).reshape(L * L, D * A)
    sums = [0.0] * (D * A)
    for row in cells:
        for o, v in enumerate(row):
            sums[o] += float(v)
    sums = [s or 1.0 for s in sums]

    def visit(term):
        acc = [0.0] * (D * A)
        for c, row in enumerate(cells):
            i, j = divmod(c, L)
            for o, v in enumerate(row):
                acc[o] += term(i, j, o, float(v) / sums[o])
        return acc

    weights = {"contrast": lambda d: d * d, "dissimilarity": abs, "homogeneity": lambda d: 1.0 / (1.0 + d * d)}
    if prop in weights:
        out = visit(lambda i, j, o, v: v * weights[prop](float(i - j)))
    elif prop in ("ASM", "energy"):
        out = [a ** 0.5 if prop == "energy" else a for a in visit(lambda i, j, o, v: v * v)]
    else:  # mean
        out = visit(lambda i, j, o, v: i * v)
    return np.array(out).reshape(D, A)


@pytest.mark.parametrize("n_offsets", [(1, 3), (1, 4), (4, 4), (2, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.uint32])
def test_skipping_zero_cells_changes_no_bit(n_offsets, dtype):
    # Mostly empty matrices, as real GLCMs are; 4 and 16 offsets take the specialised sums.
    rng = np.random.default_rng(sum(n_offsets))
    P = rng.integers(0, 50, (9, 9, *n_offsets)).astype(dtype)
    P[rng.random(P.shape) < 0.7] = 0
    P[:, :, 0, 0] = 0  # an empty offset too (its sum counts as 1)
    for prop in ("contrast", "dissimilarity", "homogeneity", "energy", "ASM", "mean"):
        np.testing.assert_array_equal(featrs.graycoprops(P, prop), _term_by_term(P, prop), err_msg=prop)


def test_non_finite_matrices_give_skimage_s_nans_and_infs():
    # Sums that are not finite turn the skipping of zero cells off; the answers stay skimage's.
    P = np.zeros((6, 6, 1, 4))
    P[1, 2] = [1.0, np.inf, np.nan, -np.inf]
    P[3, 3] = [2.0, 1.0, 1.0, np.inf]
    with np.errstate(invalid="ignore", divide="ignore"):
        for prop in PROPS:
            np.testing.assert_array_equal(featrs.graycoprops(P, prop), sk_graycoprops(P, prop), err_msg=prop)


def test_correlation_with_one_constant_marginal_is_skimage_bit_for_bit():
    # i-values constant, j-values not: scikit-image compares rounding noise with 1e-15 and
    # answers 1 or ~1e-16 depending on the numbers; featrs must do the same.
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(60):
        h, w = rng.integers(2, 9, 2)
        img = np.full((h, w), rng.integers(0, 256), np.uint8)
        img[:, -1] = rng.integers(0, 256, h)
        for normed in (False, True):
            P = sk_graycomatrix(img, [1], [0, np.pi / 2], levels=256, normed=normed)
            ref = sk_graycoprops(P, "correlation")
            np.testing.assert_array_equal(featrs.graycoprops(P, "correlation"), ref)
            batch = featrs.glcm_props_batch(img[None], angles=(0, np.pi / 2), symmetric=False,
                                            normed=normed, props=("correlation",))
            np.testing.assert_array_equal(batch, reference.glcm_props_batch(
                img[None], angles=(0, np.pi / 2), symmetric=False, normed=normed, props=("correlation",)))
            seen.add(ref[0, 0] == 1.0)
    assert seen == {True, False}, "both outcomes of scikit-image's zero-std test were exercised"


def test_offsets_beyond_the_image_give_zeros_without_crashing():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    P = featrs.graycomatrix(img, [1e300, -1e18, 4], [0.3, 2.0], levels=12)
    assert P.shape == (12, 12, 3, 2) and not P.any()
    batch = featrs.glcm_props_batch(img[None], distances=(1e300,), props=PROPS)
    expected = [1.0 if p == "correlation" else 0.0 for p in PROPS for _ in range(4)]
    np.testing.assert_array_equal(batch[0], expected)


def test_non_contiguous_inputs_are_copied():
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    view = big[::2, ::3]
    np.testing.assert_array_equal(featrs.graycomatrix(view, [1], ANGLES4), sk_graycomatrix(view, [1], ANGLES4))
    P = sk_graycomatrix(big, [1, 2], ANGLES4)
    Pv = P[:, :, ::-1, ::2]
    assert_close(featrs.graycoprops(Pv, "correlation"), sk_graycoprops(Pv, "correlation"))
    stack = rng.integers(0, 256, (3, 30, 40), dtype=np.uint8)[:, ::2, 1::3]
    assert_close(featrs.glcm_props_batch(stack), reference.glcm_props_batch(stack))


def test_batch_thread_counts_agree_and_empty_batch():
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 256, (9, 33, 35), dtype=np.uint8)
    one = featrs.glcm_props_batch(stack, props=PROPS, n_threads=1)
    for n in (2, 3, None):
        np.testing.assert_array_equal(featrs.glcm_props_batch(stack, props=PROPS, n_threads=n), one)
    empty = featrs.glcm_props_batch(np.zeros((0, 8, 8), np.uint8))
    assert empty.shape == reference.glcm_props_batch(np.zeros((0, 8, 8), np.uint8)).shape


def test_portable_code_path_gives_the_same_numbers():
    # FEATRS_SIMD=scalar disables the AVX2 build of the pair statistics.
    script = ("import json, numpy as np, featrs\n"
              "rng = np.random.default_rng(8)\n"
              "stack = rng.integers(0, 256, (3, 41, 39), dtype=np.uint8)\n"
              "stack[1] //= 64\n"
              "props = %r\n"
              "print(json.dumps([featrs.glcm_props_batch(stack, props=props, symmetric=s).tolist() for s in (0, 1)]))"
              % (PROPS,))
    root = Path(__file__).resolve().parents[1]
    outs = []
    for level in ("scalar", "avx512"):
        env = dict(os.environ, PYTHONPATH=str(root), FEATRS_SIMD=level)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              check=True, timeout=120)
        outs.append(np.array(json.loads(done.stdout)))
    np.testing.assert_array_equal(outs[0], outs[1])


# --- bad inputs -------------------------------------------------------------------------

U8 = np.ones((5, 6), np.uint8)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: featrs.graycomatrix(np.ones((2, 2, 2), np.uint8), [1], [0]), ValueError, "2-dimensional"),
    (lambda: featrs.graycomatrix(np.zeros((0, 3), np.uint8), [1], [0]), ValueError, "empty"),
    (lambda: featrs.graycomatrix(U8 * 9, [1], [0], levels=9), ValueError, "smaller than the number of levels"),
    (lambda: featrs.graycomatrix(U8, [1], [0], levels=0), ValueError, "smaller than the number of levels"),
    (lambda: featrs.graycomatrix(-np.ones((3, 3), np.int16), [1], [0], levels=4), ValueError, "Negative"),
    (lambda: featrs.graycomatrix(np.ones((3, 3)), [1], [0]), ValueError, "Float images"),
    (lambda: featrs.graycomatrix(np.ones((3, 3), np.uint16), [1], [0]), ValueError, "levels argument is required"),
    (lambda: featrs.graycomatrix(U8, [1], [0], levels=4.0), TypeError, "integer"),
    (lambda: featrs.graycomatrix(U8, [], [0]), ValueError, "`distances` cannot be an empty"),
    (lambda: featrs.graycomatrix(U8, [[1]], [0]), ValueError, "`distances` must be a 1-dimensional"),
    (lambda: featrs.graycomatrix(U8, [np.nan], [0]), ValueError, "distances must be finite"),
    (lambda: featrs.graycomatrix(U8, [1], [np.inf]), ValueError, "angles must be finite"),
    (lambda: featrs.graycoprops(np.ones((2, 2, 1, 1)), "foo"), ValueError, "foo is an invalid property"),
    (lambda: featrs.graycoprops(np.ones((2, 3, 1, 1))), ValueError, "num_level and num_level2"),
    (lambda: featrs.graycoprops(np.ones((2, 2, 1))), ValueError, "4-dimensional"),
    (lambda: featrs.glcm_props_batch(np.ones((2, 4, 4))), TypeError, "uint8"),
    (lambda: featrs.glcm_props_batch(U8), ValueError, r"\(N, H, W\)"),
    (lambda: featrs.glcm_props_batch(np.ones((1, 0, 4), np.uint8)), ValueError, "empty"),
    (lambda: featrs.glcm_props_batch(U8[None], n_threads=0), ValueError, "n_threads"),
    (lambda: featrs.glcm_props_batch(U8[None], props=("energy", "bogus")), ValueError, "bogus is an invalid"),
    (lambda: featrs.glcm_props_batch(U8[None] * 200, levels=100), ValueError, "smaller than the number"),
    (lambda: featrs.glcm_props_batch(U8[None], distances=(np.nan,)), ValueError, "finite"),
])
def test_bad_inputs_raise_like_skimage(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: sk_graycomatrix(np.ones((2, 2, 2), np.uint8), [1], [0]),
    lambda: sk_graycomatrix(U8 * 9, [1], [0], levels=9),
    lambda: sk_graycomatrix(-np.ones((3, 3), np.int16), [1], [0], levels=4),
    lambda: sk_graycomatrix(np.ones((3, 3)), [1], [0]),
    lambda: sk_graycomatrix(U8, [], [0]),
    lambda: sk_graycoprops(np.ones((2, 2, 1, 1)), "foo"),
])
def test_skimage_raises_value_error_for_the_same_inputs(call):
    with pytest.raises(ValueError):
        call()


# --- per-tile properties, few levels ------------------------------------------------------

def _quantized(images, levels):
    return ((images.astype(np.uint16) * levels) >> 8).astype(np.uint8)


# 256 levels (the dense path) is tiled 1 and 2 ways: its reference at 3x3 tiles cost 45 s.
@pytest.mark.parametrize("levels,grid", [(levels, grid) for levels in (2, 8, 32, 64, 65, 256) for grid in (1, 2, 3)
                                         if (levels, grid) != (256, 3)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_grid_batch_matches_reference_on_random_images(levels, symmetric, grid):
    rng = np.random.default_rng(levels + grid)
    images = _quantized(rng.integers(0, 256, (3, 41, 37), dtype=np.uint8), levels)
    images[0, :12, :] = images[0, 0, 0]      # a constant tile: zero variances, correlation 1
    images[1, :, :5] = 0
    kwargs = dict(distances=(1, 2, 4, 8), levels=levels, symmetric=symmetric, props=PROPS)
    ours = featrs.glcm_props_grid_batch(images, grid=grid, n_threads=2, **kwargs)
    assert_close(ours, reference.glcm_props_grid_batch(images, grid=grid, **kwargs))


@pytest.mark.realdata
def test_grid_batch_matches_reference_at_the_product_defaults(real_data):
    images = np.stack([cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA) for img in real_images(real_data)])
    images = _quantized(images, 32)
    kwargs = dict(distances=(1, 2, 4, 8), levels=32, props=featrs.GLCM_DEFAULT_PROPS)
    ours = featrs.glcm_props_grid_batch(images, grid=2, n_threads=1, **kwargs)
    assert_close(ours, reference.glcm_props_grid_batch(images, grid=2, **kwargs))
    # The single-tile batch takes the same few-levels path.
    assert_close(featrs.glcm_props_batch(images, **kwargs), reference.glcm_props_batch(images, **kwargs))


def test_grid_batch_rejects_bad_arguments():
    images = np.zeros((2, 16, 16), np.uint8)
    for grid, error in ((0, ValueError), (17, ValueError), (2.5, TypeError)):
        with pytest.raises(error):
            featrs.glcm_props_grid_batch(images, grid=grid)
    with pytest.raises(ValueError):
        featrs.glcm_props_grid_batch(images + 40, levels=32, grid=2)   # values not below levels
    assert featrs.glcm_props_grid_batch(images[:0], grid=2).shape == (0, 0)
