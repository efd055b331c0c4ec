"""producer.framing: the body crop, padding and grey-level normalisation before the resize."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import framing, imaging


def ct_like(height: int = 300, width: int = 420, centre=(160, 230), axes=(110, 150), seed: int = 0) -> np.ndarray:
    """A body ellipse with dark lungs on a black border, a text overlay and a table line."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.uint8)
    cy, cx = centre
    cv2.ellipse(img, (cx, cy), (axes[1], axes[0]), 0, 0, 360, 140, -1)
    cv2.ellipse(img, (cx - axes[1] // 2, cy), (axes[1] // 4, axes[0] // 2), 0, 0, 360, 30, -1)
    cv2.ellipse(img, (cx + axes[1] // 2, cy), (axes[1] // 4, axes[0] // 2), 0, 0, 360, 30, -1)
    noisy = img.astype(np.int16) + rng.integers(-6, 7, img.shape)
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    img[img < 8] = 0
    cv2.putText(img, "R  L  120kV", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1)
    # A patient-table line just under the body, touching it, as the scanner draws it.
    cv2.line(img, (10, cy + axes[0]), (width - 10, cy + axes[0] + 2), 200, 2)
    return img


def test_body_box_finds_the_disk_not_the_text_or_table_line():
    img = ct_like()
    top, bottom, left, right = framing.body_box(img)
    # The ellipse spans rows 50..270 and columns 80..380.
    assert abs(top - 50) <= 4 and abs(bottom - 271) <= 4
    assert abs(left - 80) <= 4 and abs(right - 381) <= 4


def test_crop_keeps_the_body_with_its_margin():
    img = ct_like()
    out = framing.crop(img, margin=0.05)
    assert out.shape[0] == pytest.approx(221 * 1.1, abs=6)
    assert out.shape[1] == pytest.approx(301 * 1.1, abs=6)
    # The body's grey (140) is inside, the text's white corner is not.
    assert (out == 255).sum() < (img == 255).sum() / 10


def test_body_box_on_a_colour_picture_equals_the_grey_one():
    img = ct_like()
    assert framing.body_box(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)) == framing.body_box(img)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_pictures_are_kept_whole(value):
    img = np.full((40, 50), value, np.uint8)
    assert framing.body_box(img) is None or framing.body_box(img) == (0, 40, 0, 50)
    out = framing.frame(img, (32, 32), crop_to="body", normalize_with="percentile")
    assert out.shape == (40, 50)
    assert (out == value).all()
    assert framing.frame(img, (32, 32), normalize_with="clahe").shape == (40, 50)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (3, 2), (301, 157)])
def test_odd_and_tiny_sizes_do_not_crash(shape):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    for crop in framing.CROPS:
        for aspect in framing.ASPECTS:
            for norm in framing.NORMALIZATIONS:
                out = framing.frame(img, (5, 9), crop_to=crop, aspect=aspect, normalize_with=norm)
                assert out.dtype == np.uint8 and out.ndim == 2 and min(out.shape) >= 1


def test_a_speck_is_not_a_body():
    img = np.zeros((200, 200), np.uint8)
    img[100:103, 100:103] = 255
    assert framing.body_box(img) is None
    assert framing.crop(img).shape == (200, 200)


def test_pad_to_aspect_centres_the_picture():
    img = np.full((10, 30), 200, np.uint8)
    out = framing.pad_to_aspect(img, 64, 64)
    assert out.shape == (30, 30)
    assert (out[10:20] == 200).all() and (out[:10] == 0).all() and (out[20:] == 0).all()
    assert framing.pad_to_aspect(img, 1, 3).shape == (10, 30)
    colour = framing.pad_to_aspect(np.full((4, 2, 3), 9, np.uint8), 1, 1)
    assert colour.shape == (4, 4, 3) and (colour[:, 1:3] == 9).all() and (colour[:, 0] == 0).all()


def test_percentile_stretches_a_dim_picture_to_the_full_range():
    img = np.tile(np.linspace(40, 90, 100).astype(np.uint8), (20, 1))
    out = framing.normalize(img, "percentile")
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out[0].astype(int)) >= 0)  # monotone: order of grey levels is kept


def test_percentile_makes_brightness_and_contrast_changes_nearly_vanish():
    img = ct_like()
    changed = np.clip(img.astype(np.float32) * 0.7 + 30, 0, 255).astype(np.uint8)
    a, b = framing.normalize(img, "percentile"), framing.normalize(changed, "percentile")
    before = np.abs(img.astype(int) - changed.astype(int)).mean()
    after = np.abs(a.astype(int) - b.astype(int)).mean()
    assert after < before / 4


def test_clahe_raises_local_contrast():
    img = ct_like()
    body = framing.crop(img)
    out = framing.normalize(body, "clahe")
    assert out.shape == body.shape and out.dtype == np.uint8
    assert out.std() > body.std()


def test_bad_options_and_inputs_raise_clear_errors():
    img = ct_like()
    with pytest.raises(ValueError, match="crop must be one of"):
        framing.frame(img, (8, 8), crop_to="lungs")
    with pytest.raises(ValueError, match="aspect must be one of"):
        framing.frame(img, (8, 8), aspect="fit")
    with pytest.raises(ValueError, match="normalize must be one of"):
        framing.normalize(img, "zscore")
    with pytest.raises(ValueError, match="margin"):
        framing.crop(img, margin=0.9)
    with pytest.raises(TypeError, match="uint8"):
        framing.body_box(img.astype(np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        framing.body_box(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError, match="grey or"):
        framing.body_box(np.zeros((5, 5, 2), np.uint8))


@pytest.mark.parametrize("kwargs, message", [
    ({"crop": "lungs"}, "crop must be one of"),
    ({"aspect": "fit"}, "aspect must be one of"),
    ({"normalize": "zscore"}, "normalize must be one of"),
    ({"crop_margin": -0.1}, "crop_margin"),
    ({"crop_margin": "0.1"}, "crop_margin"),
    ({"crop_margin": True}, "crop_margin"),
])
def test_preprocessing_refuses_bad_framing_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        imaging.Preprocessing(**kwargs)


def test_framing_options_reach_the_description():
    info = imaging.Preprocessing(crop="body", crop_margin=0.05, aspect="pad", normalize="clahe").describe()
    assert (info["crop"], info["crop_margin"], info["aspect"], info["normalize"]) == ("body", 0.05, "pad", "clahe")
    assert imaging.Preprocessing(crop="none").describe() != imaging.Preprocessing(crop="body").describe()


def test_decode_crops_before_the_resize(tmp_path):
    img = ct_like()
    path = tmp_path / "slice.png"
    assert cv2.imwrite(str(path), img)
    prep = imaging.Preprocessing(image_size=(64, 64), crop="body", crop_margin=0.0, normalize="none",
                                 denoise="none")
    out = imaging.load(path, prep)
    top, bottom, left, right = framing.body_box(img)
    expected = cv2.resize(img[top:bottom, left:right], (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out[..., 0], expected)
    plain = imaging.load(path, imaging.Preprocessing(image_size=(64, 64), crop="none", normalize="none",
                                                     denoise="none"))
    np.testing.assert_array_equal(plain[..., 0], cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))
    rgb = imaging.load(path, imaging.Preprocessing(image_size=(64, 64), color_mode="rgb", crop="body",
                                                   crop_margin=0.0, normalize="none", denoise="none"))
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1
    median = imaging.load(path, dataclasses.replace(prep, denoise="median"))
    np.testing.assert_array_equal(median[..., 0], cv2.resize(cv2.medianBlur(img[top:bottom, left:right], 3),
                                                             (64, 64), interpolation=cv2.INTER_AREA))


def _real_images(root: Path, per_split: int = 3) -> list[Path]:
    paths = []
    for split in ("train", "valid", "test"):
        files = sorted(p for p in (root / split).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        paths += files[:: max(1, len(files) // per_split)][:per_split]
    return paths


def test_real_slices_crop_to_a_large_central_body(real_data):
    for path in _real_images(real_data):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        box = framing.body_box(img)
        assert box is not None, path.name
        top, bottom, left, right = box
        h, w = img.shape
        # The body is most of the picture but not all of the border, and its centre is central.
        assert (bottom - top) * (right - left) > 0.25 * h * w, path.name
        assert abs((top + bottom) / 2 - h / 2) < 0.25 * h and abs((left + right) / 2 - w / 2) < 0.25 * w, path.name
        # Outside the box the picture is mostly dark background.
        outside = np.ones(img.shape, bool)
        outside[top:bottom, left:right] = False
        if outside.any():
            assert np.median(img[outside]) < 60, path.name


def test_real_slices_decode_with_every_framing(real_data):
    for path in _real_images(real_data, per_split=1):
        for crop in framing.CROPS:
            for norm in framing.NORMALIZATIONS:
                prep = imaging.Preprocessing(image_size=(96, 96), crop=crop, normalize=norm, aspect="pad")
                out = imaging.load(path, prep)
                assert out.shape == (96, 96, 1) and out.std() > 5


def test_producer_cli_carries_the_framing_options(tmp_path):
    from producer import cli, synthetic

    synthetic.generate(tmp_path, per_class=1, progress=False)
    ap = cli.build_parser()
    args = ap.parse_args(["-d", str(tmp_path), "--crop", "none", "--crop-margin", "0.1", "--aspect", "pad",
                          "--normalize", "clahe", "--denoise", "median"])
    prep = cli.spec_from_args(args, ap).preprocessing
    assert (prep.crop, prep.crop_margin, prep.aspect, prep.normalize, prep.denoise) == (
        "none", 0.1, "pad", "clahe", "median")
    defaults = cli.spec_from_args(ap.parse_args(["-d", str(tmp_path)]), ap).preprocessing
    assert (defaults.crop, defaults.crop_margin, defaults.aspect, defaults.normalize, defaults.denoise) == (
        framing.DEFAULT_CROP, framing.DEFAULT_CROP_MARGIN, framing.DEFAULT_ASPECT, framing.DEFAULT_NORMALIZE,
        framing.DEFAULT_DENOISE)
    with pytest.raises(SystemExit):
        cli.spec_from_args(ap.parse_args(["-d", str(tmp_path), "--crop-margin", "0.9"]), ap)
    with pytest.raises(SystemExit):
        ap.parse_args(["-d", str(tmp_path), "--normalize", "zscore"])


@pytest.mark.parametrize("method", [m for m in framing.DENOISERS if m != "none"])
def test_denoise_removes_most_sensor_noise_and_keeps_the_body(method):
    clean = cv2.GaussianBlur(ct_like(), (0, 0), 2.0)
    rng = np.random.default_rng(5)
    noisy = np.clip(clean.astype(np.float32) + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
    out = framing.denoise(noisy, method)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    error_before = np.abs(noisy.astype(int) - clean).mean()
    assert np.abs(out.astype(int) - clean).mean() < 0.6 * error_before
    assert framing.body_box(out) == pytest.approx(framing.body_box(clean), abs=4)
    colour = framing.denoise(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR), method)
    assert colour.shape == noisy.shape + (3,)


def _median(img, aperture=framing.MEDIAN_APERTURE):
    return cv2.medianBlur(img, aperture)


def _gaussian(img):
    return cv2.GaussianBlur(img, (0, 0), framing.GAUSSIAN_SIGMA)


#: Every denoiser next to the OpenCV calls it wraps.
OPENCV_DENOISERS = {
    "median": _median,
    "gaussian": _gaussian,
    "median5": lambda img: _median(img, framing.STRONG_MEDIAN_APERTURE),
    "median+gaussian": lambda img: _gaussian(_median(img)),
    "median5+gaussian": lambda img: _gaussian(_median(img, framing.STRONG_MEDIAN_APERTURE)),
    "bilateral": lambda img: cv2.bilateralFilter(img, framing.BILATERAL_DIAMETER, framing.BILATERAL_SIGMA_COLOR,
                                                 framing.BILATERAL_SIGMA_SPACE),
}


def test_every_denoiser_is_compared_with_opencv():
    assert set(OPENCV_DENOISERS) == set(framing.DENOISERS) - {"none"}
    assert (framing.STRONG_MEDIAN_APERTURE, framing.BILATERAL_DIAMETER) == (5, 5)


@pytest.mark.parametrize("method", sorted(OPENCV_DENOISERS))
def test_denoise_is_the_opencv_call_it_wraps(method):
    img = ct_like()
    np.testing.assert_array_equal(framing.denoise(img, method), OPENCV_DENOISERS[method](img))
    colour = np.ascontiguousarray(np.dstack([img, img[::-1], img[:, ::-1]]))
    np.testing.assert_array_equal(framing.denoise(colour, method), OPENCV_DENOISERS[method](colour))
    # A view (a crop) is smoothed like a copy of it.
    view = img[40:260, 60:400]
    np.testing.assert_array_equal(framing.denoise(view, method), OPENCV_DENOISERS[method](view.copy()))


@pytest.mark.parametrize("method", sorted(OPENCV_DENOISERS))
def test_decode_denoises_the_crop_before_the_resize(tmp_path, method):
    img = ct_like()
    path = tmp_path / "slice.png"
    assert cv2.imwrite(str(path), img)
    prep = imaging.Preprocessing(image_size=(64, 64), crop="body", crop_margin=0.0, normalize="none",
                                 denoise=method)
    top, bottom, left, right = framing.body_box(img)
    expected = cv2.resize(OPENCV_DENOISERS[method](img[top:bottom, left:right].copy()), (64, 64),
                          interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(imaging.load(path, prep)[..., 0], expected)
    assert imaging.Preprocessing(denoise=method).describe()["denoise"] == method


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.float32), np.zeros((0, 8), np.uint8),
                                 np.zeros((8, 8, 3, 1), np.uint8), np.zeros((8, 8, 4), np.uint8)])
@pytest.mark.parametrize("method", sorted(OPENCV_DENOISERS))
def test_denoise_refuses_bad_images_clearly(bad, method):
    with pytest.raises((TypeError, ValueError), match="image must be|expected"):
        framing.denoise(bad, method)


def test_denoise_none_is_the_identity_and_bad_names_raise():
    img = ct_like()
    assert framing.denoise(img, "none") is img
    with pytest.raises(ValueError, match="denoise must be one of"):
        framing.denoise(img, "wiener")
    with pytest.raises(ValueError, match="denoise must be one of"):
        framing.denoise(img, "nlmeans")
    with pytest.raises(ValueError, match="denoise must be one of"):
        imaging.Preprocessing(denoise="wiener")
