"""featrs.hog / featrs.hog_batch against scikit-image: parity, batch layout, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.feature import hog as sk_hog

import featrs
from featrs import reference

cv2 = pytest.importorskip("cv2")

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
#: skimage sums cells in float32, so we allow float32-level differences (we measure ~1e-15).
RTOL = 1e-5


def max_relative_difference(actual, expected):
    """Largest elementwise |a - e| / max(|a|, |e|) (0 where both are 0)."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    scale = np.maximum(np.abs(actual), np.abs(expected))
    diff = np.abs(actual - expected)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, diff / scale, 0.0)
    return float(rel.max()) if rel.size else 0.0


def assert_hog_equal(image, **kwargs):
    """featrs.hog and skimage's hog agree on shape, dtype and values (or both raise ValueError)."""
    try:
        expected = sk_hog(image, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            featrs.hog(image, **kwargs)
        return None
    actual = featrs.hog(image, **kwargs)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert max_relative_difference(actual, expected) <= RTOL, kwargs
    return actual


def real_images(data_dir, n, mode=cv2.IMREAD_GRAYSCALE):
    """``n`` dataset images spread over splits and classes, deterministic order."""
    paths = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    assert len(paths) >= n
    step = len(paths) // n
    images = []
    for path in paths[::step][:n]:
        img = cv2.imread(str(path), mode)
        assert img is not None, path
        images.append(img)
    return images


# Odd sizes on purpose: cells that do not tile the image, odd cell sizes.
REAL_SIZES = [None, (97, 131), (64, 64), (301, 255), (45, 50)]
REAL_CONFIGS = [
    dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)),
    dict(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3)),
    dict(orientations=12, pixels_per_cell=(7, 5), cells_per_block=(2, 3)),
    dict(orientations=4, pixels_per_cell=(3, 3), cells_per_block=(1, 2)),
]


@pytest.mark.realdata
def test_real_images_match_skimage_for_every_block_norm(real_data):
    for i, img in enumerate(real_images(real_data, len(REAL_SIZES))):  # each size once, one at full size
        size = REAL_SIZES[i % len(REAL_SIZES)]
        if size is not None:
            img = cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA)
        for config in REAL_CONFIGS:
            for block_norm in BLOCK_NORMS:
                for transform_sqrt in (False, True):
                    assert_hog_equal(img, block_norm=block_norm, transform_sqrt=transform_sqrt, **config)


@pytest.mark.realdata
def test_real_images_as_float_match_skimage(real_data):
    for img in real_images(real_data, 4):
        img = cv2.resize(img, (123, 117), interpolation=cv2.INTER_AREA)
        for dtype in (np.float64, np.float32):
            scaled = img.astype(dtype) / dtype(255)
            for transform_sqrt in (False, True):
                out = assert_hog_equal(scaled, cells_per_block=(2, 2), transform_sqrt=transform_sqrt)
                assert out.dtype == (np.float32 if dtype is np.float32 else np.float64)


@pytest.mark.realdata
def test_real_colour_images_match_skimage_on_any_channel_axis(real_data):
    for img in real_images(real_data, 4, cv2.IMREAD_COLOR):
        img = cv2.resize(img, (99, 83), interpolation=cv2.INTER_AREA)
        # CT images are grey: make the channels differ so the per-pixel choice matters.
        img = np.ascontiguousarray(img)
        img[..., 1] = np.roll(img[..., 1], 3, axis=1)
        img[..., 2] = 255 - img[..., 2]
        for transform_sqrt in (False, True):
            assert_hog_equal(img, cells_per_block=(2, 2), channel_axis=-1, transform_sqrt=transform_sqrt)
        assert_hog_equal(np.moveaxis(img, -1, 0), cells_per_block=(2, 2), channel_axis=0)


@st.composite
def images(draw, max_side=300, channels=False):
    """Images of odd sizes, with noise, flat regions, small value ranges or steps."""
    rows = draw(st.integers(1, max_side))
    cols = draw(st.integers(1, max_side + 1))
    dtype = draw(st.sampled_from(["uint8", "float64", "float32"]))
    style = draw(st.sampled_from(["noise", "low", "blocks", "steps"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (rows, cols, draw(st.integers(2, 4))) if channels else (rows, cols)
    if style == "noise":
        img = rng.integers(0, 256, shape)
    elif style == "low":
        # Values 0..3: gradients like sqrt(3) - sqrt(0) put angles exactly on bin edges.
        img = rng.integers(0, 4, shape)
    elif style == "blocks":
        small = rng.integers(0, 256, (max(rows // 7, 1) + 1, max(cols // 7, 1) + 1) + shape[2:])
        img = np.repeat(np.repeat(small, 7, axis=0), 7, axis=1)[:rows, :cols]
    else:
        y, x = np.mgrid[:rows, :cols]
        planes = [(x * rng.integers(0, 5) + y * rng.integers(0, 5)) % 256 for _ in range(shape[2] if channels else 1)]
        img = np.stack(planes, -1) if channels else planes[0]
    if dtype == "uint8":
        return img.astype(np.uint8)
    return (img / 255.0).astype(dtype)


hog_params = st.fixed_dictionaries({
    "orientations": st.integers(1, 13),
    "pixels_per_cell": st.tuples(st.integers(1, 9), st.integers(1, 9)),
    "cells_per_block": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "block_norm": st.sampled_from(BLOCK_NORMS),
    "transform_sqrt": st.booleans(),
    "feature_vector": st.booleans(),
})

HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(image=images(), params=hog_params)
def test_random_grayscale_images_match_skimage(image, params):
    assert_hog_equal(image, **params)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(max_side=120, channels=True), params=hog_params, axis=st.sampled_from([-1, 2, 0, 1]))
def test_random_multichannel_images_match_skimage(image, params, axis):
    image = np.moveaxis(image, -1, axis)
    assert_hog_equal(image, channel_axis=axis, **params)


def sixty_degree_image():
    """Pixel (4, 4) has the gradient (sqrt(3) - 3, 1 - sqrt(3)) under transform_sqrt:
    60 degrees in exact arithmetic, a bin boundary for 9 orientations. numpy's arctan2
    and the C library's may put it on different sides; featrs must follow numpy."""
    img = np.zeros((16, 16))
    img[3, 4], img[5, 4], img[4, 3], img[4, 5] = 9, 3, 3, 1
    return img


def test_gradients_on_a_bin_boundary_follow_numpy():
    for dtype in (np.uint8, np.float64, np.float32):
        assert_hog_equal(sixty_degree_image().astype(dtype), orientations=9, pixels_per_cell=(8, 8),
                         cells_per_block=(1, 1), block_norm="L1", transform_sqrt=True)


def test_batch_settles_boundary_gradients_in_worker_threads():
    rng = np.random.default_rng(7)
    # Values 0, 1, 3, 4, 9, 12: square roots whose differences give exact 30/60 degree angles.
    images = rng.choice(np.array([0, 1, 3, 4, 9, 12], np.uint8), size=(8, 48, 40))
    kwargs = dict(orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2), transform_sqrt=True)
    expected = reference.hog_batch(images, **kwargs)
    for n_threads in (1, 2):
        assert max_relative_difference(featrs.hog_batch(images, n_threads=n_threads, **kwargs), expected) <= RTOL


def test_one_pixel_cells_and_blocks():
    img = np.random.default_rng(1).integers(0, 256, (5, 7)).astype(np.uint8)
    out = assert_hog_equal(img, orientations=4, pixels_per_cell=(1, 1), cells_per_block=(1, 1),
                           block_norm="L1")
    assert out.shape == (5 * 7 * 4,)
    assert out.any()


def test_other_dtypes_follow_skimage_promotion():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 200, (40, 41))
    for dtype in (np.int16, np.uint16, np.int64, np.float16, bool, ">f8"):
        img = (base > 100) if dtype is bool else base.astype(dtype)
        assert_hog_equal(img, cells_per_block=(2, 2), transform_sqrt=True)
    assert_hog_equal(base.astype(np.uint8)[0], pixels_per_cell=(1, 4), cells_per_block=(1, 2))


def test_non_contiguous_inputs_are_copied():
    img = np.random.default_rng(3).integers(0, 256, (90, 120)).astype(np.uint8)
    for view in (img[::2, ::3], img.T, np.asfortranarray(img), img[5:70, 7:101]):
        assert_hog_equal(view, cells_per_block=(2, 2))


# --------------------------------------------------------------------------- batch

def batch_stack(n=6, size=(64, 72), seed=4):
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (n, *size)).astype(np.uint8).transpose(1, 2, 0), (5, 5), 0)
    return np.ascontiguousarray(smooth.transpose(2, 0, 1))


@pytest.mark.parametrize("n_threads", [None, 1, 2, 3])
def test_batch_matches_reference(n_threads):
    images = batch_stack()
    kwargs = dict(orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L1-sqrt",
                  transform_sqrt=True)
    actual = featrs.hog_batch(images, n_threads=n_threads, **kwargs)
    expected = reference.hog_batch(images, **kwargs)
    assert actual.shape == expected.shape and actual.dtype == np.float64
    assert max_relative_difference(actual, expected) <= RTOL
    # The batch is the single-image function applied to each row, bit for bit.
    for row, img in zip(actual, images):
        np.testing.assert_array_equal(row, featrs.hog(img, **kwargs))


@pytest.mark.realdata
def test_batch_on_real_images_matches_reference(real_data):
    images = np.stack([cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
                       for img in real_images(real_data, 8)])
    for block_norm in BLOCK_NORMS:
        actual = featrs.hog_batch(images, cells_per_block=(2, 2), block_norm=block_norm, n_threads=2)
        expected = reference.hog_batch(images, cells_per_block=(2, 2), block_norm=block_norm)
        assert actual.shape == expected.shape
        assert max_relative_difference(actual, expected) <= RTOL


def test_empty_batch_has_the_reference_shape():
    images = np.zeros((0, 32, 32), np.uint8)
    assert featrs.hog_batch(images).shape == reference.hog_batch(images).shape == (0, 0)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((2, 32, 32), np.float64), TypeError),
    (np.zeros((2, 32, 32), np.int16), TypeError),
    (np.zeros((32, 32), np.uint8), ValueError),
    (np.zeros((2, 0, 32), np.uint8), ValueError),
    (np.zeros((2, 8, 8), np.uint8), ValueError),
])
def test_batch_rejects_what_the_reference_rejects(bad, error):
    with pytest.raises(error):
        reference.hog_batch(bad)
    with pytest.raises(error):
        featrs.hog_batch(bad)


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, True, "2", 10**6])
def test_batch_rejects_bad_thread_counts(n_threads):
    images = np.zeros((1, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="n_threads"):
        reference.hog_batch(images, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads"):
        featrs.hog_batch(images, n_threads=n_threads)


def test_batch_accepts_non_contiguous_stacks():
    images = batch_stack(n=4, size=(70, 66))
    view = images[:, ::-1, 1:65]
    np.testing.assert_array_equal(featrs.hog_batch(view, cells_per_block=(2, 2)),
                                  featrs.hog_batch(np.ascontiguousarray(view), cells_per_block=(2, 2)))


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("image, kwargs", [
    (np.zeros((32, 32, 3)), {}),                              # 3-D without channel_axis
    (np.zeros((4, 32, 32, 3)), {"channel_axis": -1}),         # 4-D
    (np.zeros((32, 32)), {"channel_axis": -1}),               # 2-D with channel_axis
    (np.zeros((23, 40)), {}),                                 # smaller than one 3x3 block of 8x8
    (np.zeros((32, 32)), {"block_norm": "L3"}),
    (np.zeros((32, 32), complex), {}),
])
def test_rejects_what_skimage_rejects(image, kwargs):
    with pytest.raises(ValueError):
        sk_hog(image, **kwargs)
    with pytest.raises(ValueError):
        featrs.hog(image, **kwargs)


@pytest.mark.parametrize("shape", [(0, 32), (32, 0), (0, 0), (0,)])
def test_empty_images_are_a_value_error(shape):
    # skimage fails here with an IndexError from its gradient; we say what is wrong.
    with pytest.raises(ValueError, match="too small"):
        featrs.hog(np.zeros(shape, np.uint8))


def test_too_small_message_names_the_minimum_size():
    with pytest.raises(ValueError, match="at least: 24 rows and 24 cols"):
        featrs.hog(np.zeros((23, 40), np.uint8))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_rejected(value):
    img = np.ones((32, 32))
    img[3, 4] = value
    with pytest.raises(ValueError, match="finite.*row 3, col 4"):
        featrs.hog(img, cells_per_block=(2, 2))
    with pytest.raises(ValueError, match="finite"):
        featrs.hog(img.astype(np.float32), cells_per_block=(2, 2))


def test_negative_pixels_with_transform_sqrt_are_rejected():
    img = np.ones((32, 32)) * -1
    with pytest.raises(ValueError, match="non-negative"):
        featrs.hog(img, cells_per_block=(2, 2), transform_sqrt=True)


@pytest.mark.parametrize("kwargs, error", [
    ({"orientations": 0}, ValueError),
    ({"orientations": 10**9}, ValueError),
    ({"orientations": 2**70}, ValueError),
    ({"orientations": 9.5}, TypeError),
    ({"orientations": "9"}, TypeError),
    ({"pixels_per_cell": (0, 8)}, ValueError),
    ({"pixels_per_cell": (2**40, 8)}, ValueError),
    ({"pixels_per_cell": (-8, 8)}, ValueError),
    ({"pixels_per_cell": 8}, TypeError),
    ({"pixels_per_cell": (8, 8, 8)}, ValueError),
    ({"cells_per_block": (10**12, 10**12)}, ValueError),
    ({"cells_per_block": (2**62, 1)}, ValueError),
    ({"channel_axis": 5}, ValueError),
])
def test_absurd_parameters_raise_cleanly(kwargs, error):
    image = np.zeros((40, 40, 3), np.uint8) if "channel_axis" in kwargs else np.zeros((40, 40), np.uint8)
    with pytest.raises(error):
        featrs.hog(image, **kwargs)


def test_integral_float_parameters_are_accepted_like_skimage():
    img = np.random.default_rng(5).integers(0, 256, (40, 40)).astype(np.uint8)
    assert_hog_equal(img, pixels_per_cell=(8.0, 8), cells_per_block=(2, 2))


def test_raw_binding_rejects_bad_arrays_without_panicking():
    from featrs import _featrs

    img = np.zeros((32, 32), np.uint8)
    cases = [
        (np.zeros((32, 32), np.int16), TypeError),        # image dtype the kernel does not read
        ([[0] * 32] * 32, TypeError),                     # not a numpy array
        (np.zeros((2, 32, 32, 1), np.uint8), ValueError),  # 4-D image
        (np.zeros((32, 64), np.uint8)[:, ::2], ValueError),  # not C-contiguous
        (np.zeros((8, 8), np.uint8), ValueError),          # smaller than one block
    ]
    for image, error in cases:
        with pytest.raises(error):
            _featrs.hog_image(image, 9, (8, 8), (2, 2), "L2-Hys", False)
    readonly = img.copy()
    readonly.flags.writeable = False
    assert _featrs.hog_image(readonly, 9, (8, 8), (2, 2), "L2-Hys", False).shape == (3, 3, 2, 2, 9)
    with pytest.raises(ValueError):
        _featrs.hog_image(img, 9, (8, 8), (2, 2), "L5", False)
    with pytest.raises(ValueError):
        _featrs.hog_batch(np.zeros((32, 32), np.uint8), 9, (8, 8), (2, 2), "L2-Hys", False, 2)  # 2-D stack
    with pytest.raises(ValueError):
        _featrs.hog_batch(np.zeros((2, 32, 32), np.uint8), 9, (8, 8), (2, 2), "L2-Hys", False, 0)  # no threads
    out = _featrs.hog_batch(np.zeros((2, 32, 32), np.uint8), 9, (8, 8), (2, 2), "L2-Hys", False, 2)
    assert out.shape == (2, 3 * 3 * 2 * 2 * 9) and out.dtype == np.float64


@pytest.mark.parametrize("image, kwargs", [
    (np.random.default_rng(0).integers(0, 256, (67, 83), dtype=np.uint8), {}),
    (np.random.default_rng(1).random((64, 64)).astype(np.float32), {"pixels_per_cell": (16, 16)}),
    (np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8), {"channel_axis": -1, "transform_sqrt": True}),
    (np.random.default_rng(3).random((33, 47)), {"pixels_per_cell": (5, 7), "orientations": 7}),
])
def test_visualize_draws_skimages_hog_image(image, kwargs):
    ours, ours_image = featrs.hog(image, visualize=True, **kwargs)
    ref, ref_image = sk_hog(image, visualize=True, **kwargs)
    assert ours_image.dtype == ref_image.dtype and ours_image.shape == ref_image.shape
    np.testing.assert_array_equal(ours_image, ref_image)
    assert max_relative_difference(ours, ref) <= RTOL


@pytest.mark.realdata
def test_visualize_on_real_images(real_data):
    for img in real_images(real_data, 2):
        _, ours = featrs.hog(img, visualize=True, pixels_per_cell=(16, 16))
        _, ref = sk_hog(img, visualize=True, pixels_per_cell=(16, 16))
        np.testing.assert_array_equal(ours, ref)
