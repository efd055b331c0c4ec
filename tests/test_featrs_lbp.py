"""featrs.local_binary_pattern / lbp_histogram_batch against scikit-image: codes, batch, bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.feature import local_binary_pattern as sk_lbp

import featrs
from featrs import reference

cv2 = pytest.importorskip("cv2")

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")
#: (P, R) pairs: integral and fractional radii, neighbours on and off the pixel grid.
NEIGHBOURHOODS = [(8, 1), (8, 2.5), (16, 2), (24, 3), (4, 1.5), (12, 1.3)]


def assert_lbp_equal(image, P, R, method):
    """Identical codes (and identical variances, NaN included, for 'var')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about float images
        expected = sk_lbp(image, P, R, method)
        actual = featrs.local_binary_pattern(image, P, R, method)
    assert actual.dtype == expected.dtype == np.float64
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected, err_msg=f"P={P} R={R} method={method}")


def real_images(data_dir, n):
    paths = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    step = len(paths) // n
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[::step][:n]]
    assert all(img is not None for img in images)
    return images


@pytest.mark.realdata
def test_real_images_match_skimage(real_data):
    sizes = [None, (97, 131), (128, 128), (45, 301)]
    for i, img in enumerate(real_images(real_data, 8)):
        if sizes[i % len(sizes)] is not None:
            img = cv2.resize(img, sizes[i % len(sizes)][::-1], interpolation=cv2.INTER_AREA)
        elif img.shape[0] > 320:
            img = img[:320, :320]
        for P, R in NEIGHBOURHOODS:
            for method in METHODS:
                assert_lbp_equal(img, P, R, method)


@pytest.mark.realdata
def test_real_images_as_float_match_skimage(real_data):
    for img in real_images(real_data, 3):
        img = cv2.resize(img, (77, 81), interpolation=cv2.INTER_AREA)
        for scaled in (img / 255.0, img.astype(np.float32) / 7, img.astype(np.int32) - 100):
            for method in METHODS:
                assert_lbp_equal(scaled, 8, 1.5, method)


@st.composite
def images(draw, max_side=300):
    rows = draw(st.integers(1, max_side))
    cols = draw(st.integers(1, max_side + 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    style = draw(st.sampled_from(["noise", "low", "flat"]))
    high = {"noise": 256, "low": 3, "flat": 1}[style]
    img = rng.integers(0, high, (rows, cols)) + draw(st.integers(0, 100)) * (style == "flat")
    dtype = draw(st.sampled_from(["uint8", "float64", "float32", "int16"]))
    if dtype == "uint8":
        return img.astype(np.uint8)
    if dtype == "int16":
        return (img - 128).astype(np.int16)
    return (img / 255.0).astype(dtype)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(), method=st.sampled_from(METHODS), P=st.integers(1, 24),
       R=st.one_of(st.sampled_from([1.0, 2.0, 3.0]), st.floats(0.0, 6.0)))
def test_random_images_match_skimage(image, method, P, R):
    assert_lbp_equal(image, P, R, method)


def test_large_neighbour_counts_and_radii_match_skimage():
    img = np.random.default_rng(1).integers(0, 256, (40, 37)).astype(np.uint8)
    for method in ("uniform", "nri_uniform", "var"):
        assert_lbp_equal(img, 40, 3.7, method)
    for method in METHODS:
        assert_lbp_equal(img, 31, 2.2, method)
        assert_lbp_equal(img, 8, 60.0, method)     # every neighbour outside the image
        assert_lbp_equal(img, 8, -1.5, method)     # skimage accepts a negative radius


def test_float_images_warn_like_skimage():
    with pytest.warns(UserWarning, match="floating-point images"):
        featrs.local_binary_pattern(np.zeros((5, 5)), 8, 1)


def test_non_contiguous_inputs_are_copied():
    img = np.random.default_rng(2).integers(0, 256, (60, 80)).astype(np.uint8)
    for view in (img[::2, ::3], img.T, np.asfortranarray(img), img[3:50, 7:71]):
        assert_lbp_equal(view, 8, 1, "uniform")


# --------------------------------------------------------------------------- batch

def batch_stack(n=6, size=(50, 61), seed=3):
    return np.random.default_rng(seed).integers(0, 256, (n, *size)).astype(np.uint8)


@pytest.mark.parametrize("method", ["default", "ror", "uniform", "nri_uniform"])
@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_batch_matches_reference(method, n_threads):
    images = batch_stack()
    for P, R in [(8, 1), (12, 2.5)]:
        actual = featrs.lbp_histogram_batch(images, P, R, method, n_threads=n_threads)
        expected = reference.lbp_histogram_batch(images, P, R, method)
        assert actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)
        np.testing.assert_allclose(actual.sum(axis=1), 1.0)


@pytest.mark.realdata
def test_batch_on_real_images_matches_reference(real_data):
    images = np.stack([cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
                       for img in real_images(real_data, 8)])
    np.testing.assert_array_equal(featrs.lbp_histogram_batch(images, n_threads=2),
                                  reference.lbp_histogram_batch(images))


def test_empty_batch_has_the_reference_shape():
    images = np.zeros((0, 16, 16), np.uint8)
    assert featrs.lbp_histogram_batch(images).shape == reference.lbp_histogram_batch(images).shape == (0, 10)


@pytest.mark.parametrize("bad, kwargs, error", [
    (np.zeros((2, 16, 16), np.float64), {}, TypeError),
    (np.zeros((16, 16), np.uint8), {}, ValueError),
    (np.zeros((2, 16, 0), np.uint8), {}, ValueError),
    (np.zeros((2, 16, 16), np.uint8), {"method": "var"}, ValueError),
    (np.zeros((2, 16, 16), np.uint8), {"method": "bogus"}, ValueError),
    (np.zeros((2, 16, 16), np.uint8), {"n_threads": 0}, ValueError),
    (np.zeros((2, 16, 16), np.uint8), {"n_threads": -2}, ValueError),
])
def test_batch_rejects_what_the_reference_rejects(bad, kwargs, error):
    with pytest.raises(error):
        reference.lbp_histogram_batch(bad, **kwargs)
    with pytest.raises(error):
        featrs.lbp_histogram_batch(bad, **kwargs)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("image", [
    np.zeros((4, 4, 3), np.uint8),
    np.zeros(5, np.uint8),
    np.zeros((0, 5), np.uint8),
    np.zeros((0, 0)),
])
def test_rejects_shapes_skimage_rejects(image):
    with pytest.raises(ValueError):
        sk_lbp(image, 8, 1)
    with pytest.raises(ValueError):
        featrs.local_binary_pattern(image, 8, 1)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_pixels_are_rejected(value):
    img = np.ones((6, 6))
    img[2, 2] = value
    with pytest.raises(ValueError, match="finite"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featrs.local_binary_pattern(img, 8, 1)


@pytest.mark.parametrize("args, error", [
    ((0, 1), ValueError),                 # skimage silently returns zeros
    ((-3, 1), ValueError),
    ((32, 1, "default"), ValueError),     # codes beyond skimage's int32 weights
    ((10**6, 1, "uniform"), ValueError),
    ((2**80, 1), ValueError),
    ((8.5, 1), TypeError),                # skimage silently truncates to 8
    ((True, 1), TypeError),
    (("8", 1), TypeError),
    ((8, float("nan")), ValueError),
    ((8, float("inf")), ValueError),
    ((8, "1"), TypeError),
    ((8, 1, "bogus"), ValueError),        # skimage raises KeyError
    ((8, 1, None), TypeError),            # skimage raises AttributeError
])
def test_absurd_parameters_raise_cleanly(args, error):
    with pytest.raises(error):
        featrs.local_binary_pattern(np.zeros((8, 8), np.uint8), *args)


def test_method_names_are_case_insensitive_like_skimage():
    img = np.random.default_rng(4).integers(0, 256, (20, 20)).astype(np.uint8)
    np.testing.assert_array_equal(featrs.local_binary_pattern(img, 8, 1, "Uniform"), sk_lbp(img, 8, 1, "Uniform"))


def test_integral_float_parameters_are_accepted_like_skimage():
    img = np.random.default_rng(5).integers(0, 256, (20, 20)).astype(np.uint8)
    np.testing.assert_array_equal(featrs.local_binary_pattern(img, 8.0, 1), sk_lbp(img, 8, 1))


def test_raw_binding_rejects_bad_arrays_without_panicking():
    from featrs import _featrs
    from featrs._lbp import neighbour_offsets

    img = np.zeros((8, 8), np.uint8)
    rp, cp = neighbour_offsets(8, 1.0)
    with pytest.raises(ValueError):
        _featrs.lbp_image(img, 8, rp[:4], cp, "uniform")   # offsets of the wrong length
    with pytest.raises(ValueError):
        _featrs.lbp_image(img[None], 8, rp, cp, "uniform")  # 3-D image
    with pytest.raises(ValueError):
        _featrs.lbp_image(img, 0, rp[:0], cp[:0], "uniform")
    with pytest.raises(TypeError):
        _featrs.lbp_image(img.astype(np.int32), 8, rp, cp, "uniform")
    with pytest.raises(TypeError):
        _featrs.lbp_image(img, 8, rp.astype(np.float32), cp, "uniform")
    with pytest.raises(ValueError):
        _featrs.lbp_histogram_batch(np.zeros((2, 8, 8), np.uint8), 8, rp, cp, "var", 1)
    with pytest.raises(ValueError):
        _featrs.lbp_histogram_batch(np.zeros((2, 8, 8), np.uint8), 8, rp, cp, "uniform", 0)
    out = _featrs.lbp_histogram_batch(np.zeros((2, 8, 8), np.uint8), 8, rp, cp, "uniform", 1)
    assert out.shape == (2, 10)
    np.testing.assert_array_equal(out[:, 8], 1.0)  # a flat image: every pattern is all ones


# --- per-tile histograms of several (P, R) pairs ----------------------------------------

def _grid_cases():
    rng = np.random.default_rng(11)
    odd = rng.integers(0, 256, (3, 37, 53), dtype=np.uint8)
    odd[0, 5:20, 5:30] = 77           # flat: comparisons on the edge of rounding
    odd[1, :, :9] = 0                 # black background
    return odd


@pytest.mark.parametrize("method", ["uniform", "nri_uniform", "default", "ror"])
@pytest.mark.parametrize("grid", [1, 2, 3])
def test_grid_batch_equals_skimage_per_tile_on_random_images(method, grid):
    images = _grid_cases()
    P, R = ((8, 16, 24), (1, 2, 3)) if method in ("uniform", "nri_uniform") else ((8, 12), (1, 2.5))
    ours = featrs.lbp_histogram_grid_batch(images, P, R, method, grid, n_threads=2)
    np.testing.assert_array_equal(ours, reference.lbp_histogram_grid_batch(images, P, R, method, grid))
    assert ours.shape == (len(images), grid * grid * sum(featrs.lbp_n_bins(p, method) for p in P))


@pytest.mark.realdata
def test_grid_batch_equals_skimage_at_the_product_defaults(real_data):
    files = sorted(p for p in (real_data / "train").rglob("*") if p.suffix.lower() in (".png", ".jpg"))[::97][:6]
    import cv2
    images = np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (256, 256), interpolation=cv2.INTER_AREA)
                       for f in files])
    ours = featrs.lbp_histogram_grid_batch(images, (8, 16, 24), (1, 2, 3), "uniform", 3, n_threads=1)
    np.testing.assert_array_equal(ours, reference.lbp_histogram_grid_batch(images, (8, 16, 24), (1, 2, 3), "uniform", 3))
    odd = np.ascontiguousarray(images[:, 3:130, 1:132])
    np.testing.assert_array_equal(featrs.lbp_histogram_grid_batch(odd, (8, 16), (1.5, 2), "uniform", 2),
                                  reference.lbp_histogram_grid_batch(odd, (8, 16), (1.5, 2), "uniform", 2))


def test_grid_batch_of_one_pair_and_one_tile_is_the_plain_batch():
    images = _grid_cases()
    np.testing.assert_array_equal(featrs.lbp_histogram_grid_batch(images, 16, 2.0, "uniform", 1),
                                  featrs.lbp_histogram_batch(images, 16, 2.0, "uniform"))


@pytest.mark.parametrize("kwargs, error", [
    ({"P": (8, 16), "R": (1,)}, ValueError),          # unpaired
    ({"P": (), "R": ()}, ValueError),
    ({"grid": 0}, ValueError),
    ({"grid": 38}, ValueError),                        # more tiles than rows
    ({"grid": 1.5}, TypeError),
    ({"method": "var"}, ValueError),
    ({"method": 3}, TypeError),
    ({"P": 40, "R": 1, "method": "default"}, ValueError),
])
def test_grid_batch_rejects_bad_arguments(kwargs, error):
    args = {"P": 8, "R": 1.0, "method": "uniform", "grid": 2, **kwargs}
    with pytest.raises(error):
        featrs.lbp_histogram_grid_batch(_grid_cases(), **args)


def test_grid_batch_of_no_images_has_the_right_width():
    out = featrs.lbp_histogram_grid_batch(np.zeros((0, 9, 9), np.uint8), (8, 16), (1, 2), "uniform", 3)
    assert out.shape == (0, 9 * (10 + 18))
