"""featrs' Gabor against scikit-image.

Tolerances (``scale`` = max |reference| over both real and imaginary responses):
- float64 responses and batch statistics: ``|featrs - skimage| <= 1e-9 * scale``;
- float32 responses: 4 float32 ulps of ``scale`` (both round a float64 sum to float32);
- integer and bool responses: identical, except where the float64 response lies within
  ``1e-9 * scale`` of an integer (truncation can then go either way);
- kernels: identical.

scipy's 2-D ``reflect`` convolution reads outside the image when the kernel's half size
is at least 4x the image along an axis (scipy 1.17); there featrs is compared with the
explicit ``np.pad(mode="symmetric")`` convolution that scipy documents.
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
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.filters import gabor as sk_gabor
from skimage.filters import gabor_kernel as sk_gabor_kernel

import featrs
from featrs import _gabor, reference

MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
PAD_MODES = {"reflect": "symmetric", "grid-mirror": "symmetric", "mirror": "reflect",
             "nearest": "edge", "wrap": "wrap", "grid-wrap": "wrap",
             "constant": "constant", "grid-constant": "constant"}
RTOL = 1e-9
HYPOTHESIS = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def scipy_reflect_is_broken(shape, params, mode) -> bool:
    """scipy 1.17's 2-D reflect mode is wrong once the half size reaches 4x the axis."""
    *_, x0, y0 = params
    rows, cols = shape
    return mode in ("reflect", "grid-mirror") and ((rows >= 2 and y0 >= 4 * rows) or (cols >= 2 and x0 >= 4 * cols))


def padded_reference(image, kernel, mode, cval):
    """``scipy.ndimage.convolve`` as documented: extend explicitly, convolve, crop."""
    y0, x0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    pad = ((y0, y0), (x0, x0))
    kwargs = dict(constant_values=cval) if PAD_MODES[mode] == "constant" else {}
    padded = np.pad(image.astype(np.float64), pad, mode=PAD_MODES[mode], **kwargs)
    out = [ndi.convolve(padded, part, mode="constant")[y0:y0 + image.shape[0], x0:x0 + image.shape[1]]
           for part in (kernel.real, kernel.imag)]
    return tuple(out)


def reference_responses(image, kwargs):
    """skimage's responses, or the documented ones where scipy's reflect is broken."""
    params = _gabor._kernel_params(kwargs["frequency"], kwargs.get("theta", 0), kwargs.get("bandwidth", 1),
                                   kwargs.get("sigma_x"), kwargs.get("sigma_y"), kwargs.get("n_stds", 3),
                                   kwargs.get("offset", 0))
    mode = kwargs.get("mode", "reflect")
    if scipy_reflect_is_broken(image.shape, params, mode) and image.dtype.kind == "f" and image.dtype.itemsize == 8:
        kernel_args = {k: v for k, v in kwargs.items() if k not in ("mode", "cval")}
        return padded_reference(image, sk_gabor_kernel(**kernel_args), mode, kwargs.get("cval", 0))
    if scipy_reflect_is_broken(image.shape, params, mode):
        return None
    return sk_gabor(image, **kwargs)


def assert_responses_match(image, kwargs):
    ours = featrs.gabor(image, **kwargs)
    ref = reference_responses(image, kwargs)
    if ref is None:  # scipy's broken region for a non-float64 image: nothing to compare with
        return
    assert [o.dtype for o in ours] == [r.dtype for r in ref]
    assert all(o.shape == image.shape for o in ours)
    scale = max(float(np.max(np.abs(r.astype(np.float64) if r.dtype.kind != "c" else r))) for r in ref)
    kind = ref[0].dtype.kind
    if kind in "fc" and ref[0].dtype.itemsize in (8, 16):
        for o, r in zip(ours, ref):
            np.testing.assert_allclose(o, r, rtol=0, atol=RTOL * scale)
    elif kind in "fc":
        for o, r in zip(ours, ref):
            np.testing.assert_allclose(o, r, rtol=0, atol=4 * np.finfo(np.float32).eps * scale)
    else:
        as_float = sk_gabor(image.astype(np.float64), **kwargs)
        for o, r, f in zip(ours, ref, as_float):
            near_integer = np.abs(f - np.round(f)) <= RTOL * max(scale, 1.0)
            mismatch = (o != r) & ~near_integer
            assert not mismatch.any(), (o[mismatch][:5], r[mismatch][:5], f[mismatch][:5])


def real_images(root: Path, count: int = 4) -> list[np.ndarray]:
    files = sorted(p for p in (root / "test").glob("*/*") if p.suffix.lower() in (".png", ".jpg"))
    picks = files[:: max(1, len(files) // count)][:count]
    sizes = [(64, 64), (61, 67), (96, 95), (33, 47)]
    return [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), sizes[k % len(sizes)][::-1],
                       interpolation=cv2.INTER_AREA) for k, p in enumerate(picks)]


# --- kernels ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(frequency=0.1), dict(frequency=0.3, theta=0.7, offset=0.4),
    dict(frequency=0.2, sigma_x=2, sigma_y=3.5, theta=1.1), dict(frequency=0.25, bandwidth=0.5, n_stds=2),
    dict(frequency=0.6, theta=-2.0, n_stds=0), dict(frequency=1, theta=3, sigma_x=0.7),
    dict(frequency=0, sigma_x=2, sigma_y=3), dict(frequency=0.0, sigma_x=1.5, sigma_y=1.5, theta=0.3),
])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_kernel_is_identical(kwargs, dtype):
    ours = featrs.gabor_kernel(dtype=dtype, **kwargs)
    ref = sk_gabor_kernel(dtype=dtype, **kwargs)
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)


# --- responses --------------------------------------------------------------------------

@pytest.mark.realdata
def test_responses_on_real_images(real_data):
    for k, img in enumerate(real_images(real_data)):
        for f in reference.GABOR_FREQUENCIES:
            theta = reference.GABOR_THETAS[k % 4]
            mode = MODES[(k + int(f * 10)) % len(MODES)]
            assert_responses_match(img, dict(frequency=f, theta=theta, mode=mode, cval=0.5))
            assert_responses_match(img / 255.0, dict(frequency=f, theta=theta + 0.3, mode=mode, offset=0.5))
        assert_responses_match(img.astype(np.float32), dict(frequency=0.2, theta=0.4, sigma_x=2.0, sigma_y=3.0))


@pytest.mark.realdata
def test_batch_matches_reference_on_real_images(real_data):
    images = np.stack([cv2.resize(img, (67, 61), interpolation=cv2.INTER_AREA) for img in real_images(real_data)])
    for kwargs in ({}, dict(mode="wrap", bandwidth=1.5), dict(frequencies=(0.15, 0.45), thetas=(0.3,), n_stds=2,
                                                               mode="constant", cval=0.25)):
        ours = featrs.gabor_bank_batch(images, **kwargs)
        ref = reference.gabor_bank_batch(images, **kwargs)
        assert ours.shape == ref.shape
        for col in range(ref.shape[1]):
            np.testing.assert_allclose(ours[:, col], ref[:, col], rtol=0, atol=RTOL * np.max(np.abs(ref[:, col])))


@st.composite
def gabor_cases(draw):
    rows = draw(st.integers(1, 150)) * 2 - 1 if draw(st.booleans()) else draw(st.integers(1, 301))
    cols = draw(st.integers(1, 301))
    frequency = draw(st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.4, 0.5]) | st.floats(0.04, 0.7))
    kwargs = dict(frequency=frequency, theta=draw(st.floats(-4, 7)),
                  bandwidth=draw(st.sampled_from([1, 0.7, 1.8])),
                  n_stds=draw(st.sampled_from([3, 1.5, 2.5])),
                  offset=draw(st.sampled_from([0, 0.5, -2.0])),
                  mode=draw(st.sampled_from(MODES + ("grid-wrap", "grid-mirror", "grid-constant"))),
                  cval=draw(st.sampled_from([0, 0.7, -3.0])))
    if draw(st.booleans()):
        kwargs["sigma_x"] = draw(st.floats(0.5, 6))
        kwargs["sigma_y"] = kwargs["sigma_x"] if draw(st.booleans()) else draw(st.floats(0.5, 6))
    params = _gabor._kernel_params(frequency, kwargs["theta"], kwargs["bandwidth"], kwargs.get("sigma_x"),
                                   kwargs.get("sigma_y"), kwargs["n_stds"], kwargs["offset"])
    *_, x0, y0 = params
    # Keep scipy's direct convolution cheap enough for CI.
    assume(rows * cols * (2 * x0 + 1) * (2 * y0 + 1) <= 4e7)
    dtype = draw(st.sampled_from([np.float64, np.float64, np.uint8, np.float32, np.int16, np.uint16, np.bool_,
                                  np.float16, np.int64, np.complex128]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == np.bool_:
        image = rng.random((rows, cols)) > 0.5
    elif np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        image = rng.integers(max(info.min, -1000), min(info.max, 60000), (rows, cols), endpoint=True).astype(dtype)
    elif dtype == np.complex128:
        image = rng.normal(size=(rows, cols)) + 1j * rng.normal(size=(rows, cols))
    else:
        image = (rng.normal(size=(rows, cols)) * 10.0 ** draw(st.integers(-3, 3))).astype(dtype)
    return image, kwargs


@HYPOTHESIS
@given(gabor_cases())
def test_responses_match_skimage(case):
    image, kwargs = case
    assert_responses_match(image, kwargs)


@HYPOTHESIS
@given(st.integers(5, 90), st.integers(5, 90), st.integers(1, 3), st.sampled_from(MODES),
       st.sampled_from([((0.1, 0.3), (0.0, 1.0)), (reference.GABOR_FREQUENCIES, reference.GABOR_THETAS),
                        ((0.45,), (2.5, -0.7, 0.2))]),
       st.integers(0, 2**32 - 1))
def test_batch_matches_reference(rows, cols, n_images, mode, bank, seed):
    frequencies, thetas = bank
    # Half sizes reach 17 px: below 4x the image (scipy's reflect is fine) from 5 px up.
    images = np.random.default_rng(seed).integers(0, 256, (n_images, rows, cols), dtype=np.uint8)
    kwargs = dict(frequencies=frequencies, thetas=thetas, mode=mode, cval=0.3)
    ours = featrs.gabor_bank_batch(images, n_threads=2, **kwargs)
    ref = reference.gabor_bank_batch(images, **kwargs)
    for col in range(ref.shape[1]):
        np.testing.assert_allclose(ours[:, col], ref[:, col], rtol=0, atol=RTOL * np.max(np.abs(ref[:, col])))


DTYPES = (np.float64, np.float32, np.float16, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
          np.uint64, np.int64, np.bool_, np.complex128, np.complex64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES + ("grid-wrap", "grid-mirror", "grid-constant"))
def test_every_dtype_and_mode(dtype, mode):
    rng = np.random.default_rng(11)
    values = rng.normal(size=(23, 31)) * 60 + 20
    if np.dtype(dtype).kind == "c":
        image = (values + 1j * rng.normal(size=values.shape)).astype(dtype)
    elif np.dtype(dtype).kind == "u":
        image = np.abs(values).astype(dtype)
    elif np.dtype(dtype).kind == "b":
        image = values > 20
    else:
        image = values.astype(dtype)
    for kwargs in (dict(frequency=0.3, theta=0.4, offset=0.2), dict(frequency=0.15, sigma_x=1.5, sigma_y=2.5, theta=2.0)):
        assert_responses_match(image, dict(kwargs, mode=mode, cval=-1.25))


def test_integer_responses_wrap_like_scipy():
    # Responses far outside the dtype's range: truncated toward zero, then wrapped.
    for dtype, value in ((np.uint8, 250), (np.int8, -120), (np.uint16, 65000), (np.int32, 2**31 - 5),
                         (np.uint32, 4_000_000_000), (np.int64, -(2**40)), (np.uint64, 2**62)):
        image = np.full((9, 10), value, dtype)
        image[::2, 1::3] = 0
        assert_responses_match(image, dict(frequency=0.4, sigma_x=0.4, theta=0.2, mode="wrap"))


def test_reflect_beyond_scipys_range_follows_the_documented_extension():
    rng = np.random.default_rng(5)
    image = rng.random((3, 7))
    kwargs = dict(frequency=0.1, theta=0.3)  # 35 x 35 kernel: 17 >= 4 * 3
    ours = featrs.gabor(image, **kwargs)
    expected = padded_reference(image, sk_gabor_kernel(**kwargs), "reflect", 0)
    for o, e in zip(ours, expected):
        np.testing.assert_allclose(o, e, rtol=0, atol=1e-12)


def test_one_pixel_images_and_every_mode():
    for mode in MODES:
        for image in (np.array([[0.25]]), np.array([[3]], np.uint8), np.ones((1, 5)), np.arange(4.0)[:, None]):
            assert_responses_match(image, dict(frequency=0.3, theta=0.5, mode=mode, cval=1.5))


def test_batch_threads_agree_non_contiguous_and_empty():
    rng = np.random.default_rng(9)
    stack = rng.integers(0, 256, (7, 40, 44), dtype=np.uint8)
    one = featrs.gabor_bank_batch(stack, n_threads=1)
    for n in (2, 3, None):
        np.testing.assert_array_equal(featrs.gabor_bank_batch(stack, n_threads=n), one)
    view = stack[:, ::2, 1::2]
    np.testing.assert_allclose(featrs.gabor_bank_batch(view), reference.gabor_bank_batch(view), rtol=1e-9, atol=0)
    image = rng.random((30, 40))[::2, ::-1]
    np.testing.assert_allclose(featrs.gabor(image, 0.2)[0], sk_gabor(image, 0.2)[0], rtol=0, atol=1e-12)
    empty = np.zeros((0, 8, 8), np.uint8)
    assert featrs.gabor_bank_batch(empty).shape == reference.gabor_bank_batch(empty).shape


SIMD_SCRIPT = """
import json, numpy as np, featrs
rng = np.random.default_rng(4)
stack = rng.integers(0, 256, (2, 37, 45), dtype=np.uint8)
image = rng.random((29, 35))
out = [featrs.gabor_bank_batch(stack, mode=m).tolist() for m in ("reflect", "constant")]
out += [np.concatenate(featrs.gabor(image, 0.17, theta=t, offset=0.3)).tolist() for t in (0.0, 0.9)]
out += [np.concatenate(featrs.gabor(image.astype(np.float32), 0.3, sigma_x=1.2)).tolist()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", ["scalar", "avx2"])
def test_every_instruction_set_gives_the_same_numbers(level):
    # FEATRS_SIMD lowers the instruction set, so the AVX2 and portable code paths are
    # checked on any CPU that has them (and match the default path).
    root = Path(__file__).resolve().parents[1]
    def run(env_level):
        env = dict(os.environ, PYTHONPATH=str(root), FEATRS_SIMD=env_level)
        done = subprocess.run([sys.executable, "-c", SIMD_SCRIPT], env=env, capture_output=True, text=True,
                              check=True, timeout=120)
        return [np.array(v) for v in json.loads(done.stdout)]
    for ours, best in zip(run(level), run("avx512")):
        np.testing.assert_allclose(ours, best, rtol=0, atol=1e-12 * np.max(np.abs(best)))


# --- bad inputs -------------------------------------------------------------------------

IMG = np.ones((6, 7))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: featrs.gabor(np.ones((2, 2, 2)), 0.2), ValueError, "2-dimensional"),
    (lambda: featrs.gabor(np.ones((0, 3)), 0.2), ValueError, "empty"),
    (lambda: featrs.gabor(IMG, 0), ValueError, "needs sigma_x and sigma_y"),   # skimage: ZeroDivisionError
    (lambda: featrs.gabor(IMG, -0.2), ValueError, "frequency must be >= 0"),
    (lambda: featrs.gabor(IMG, np.nan), ValueError, "frequency must be finite"),
    (lambda: featrs.gabor(IMG, 0.2, theta=np.inf), ValueError, "theta must be finite"),
    (lambda: featrs.gabor(IMG, 0.2, bandwidth=0), ValueError, "bandwidth must be > 0"),
    (lambda: featrs.gabor(IMG, 0.2, sigma_x=-1), ValueError, "sigma_x must be finite and > 0"),
    (lambda: featrs.gabor(IMG, 1e-9), ValueError, "too large"),
    (lambda: featrs.gabor(IMG, 0.2, n_stds=1e9), ValueError, "too large"),
    (lambda: featrs.gabor(np.full((3, 3), np.nan), 0.2), ValueError, "finite"),
    (lambda: featrs.gabor(IMG, 0.2, mode="foo"), RuntimeError, "boundary mode not supported"),
    (lambda: featrs.gabor(IMG, 0.2, mode="constant", cval=np.inf), ValueError, "cval must be finite"),
    (lambda: featrs.gabor(IMG, "x"), TypeError, "frequency must be a real number"),
    (lambda: featrs.gabor(np.array([["a"]]), 0.2), RuntimeError, "not supported"),
    (lambda: featrs.gabor_kernel(0.2, dtype=np.float64), ValueError, "dtype must be complex"),
    (lambda: featrs.gabor_bank_batch(np.ones((2, 4, 4))), TypeError, "uint8"),
    (lambda: featrs.gabor_bank_batch(np.ones((4, 4), np.uint8)), ValueError, r"\(N, H, W\)"),
    (lambda: featrs.gabor_bank_batch(np.ones((1, 4, 0), np.uint8)), ValueError, "empty"),
    (lambda: featrs.gabor_bank_batch(np.ones((1, 4, 4), np.uint8), n_threads=0), ValueError, "n_threads"),
    (lambda: featrs.gabor_bank_batch(np.ones((1, 4, 4), np.uint8), frequencies=(0.0,)), ValueError, "frequency"),
    (lambda: featrs.gabor_bank_batch(np.ones((1, 4, 4), np.uint8), mode="bad"), RuntimeError, "boundary mode"),
])
def test_bad_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call, exc", [
    (lambda: sk_gabor(np.ones((2, 2, 2)), 0.2), ValueError),
    (lambda: sk_gabor(np.ones((0, 3)), 0.2), ValueError),
    (lambda: sk_gabor(IMG, 0.2, mode="foo"), RuntimeError),
    (lambda: sk_gabor_kernel(0.2, dtype=np.float64), ValueError),
])
def test_skimage_raises_the_same_kind(call, exc):
    with pytest.raises(exc):
        call()


def test_frequency_zero_is_a_gaussian_like_skimage():
    """scikit-image accepts frequency 0 with explicit sigmas: a plain (complex) Gaussian."""
    img = np.random.default_rng(3).random((29, 31))
    for sigmas in ((2.0, 2.0), (1.5, 3.0)):     # separable and direct paths
        ours = featrs.gabor(img, 0, sigma_x=sigmas[0], sigma_y=sigmas[1], theta=0.4)
        ref = sk_gabor(img, 0, sigma_x=sigmas[0], sigma_y=sigmas[1], theta=0.4)
        for o, r in zip(ours, ref):
            np.testing.assert_allclose(o, r, rtol=0, atol=1e-12 * max(1.0, np.abs(r).max()))
