"""FeatureConfig (round trips, option parsing) and extract() (shapes, order, backends)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import featrs
from consumer import features as F
from consumer.features import FeatureConfig, extract, feature_names, n_features
from featrs import reference

from producer.imaging import DEFAULT_IMAGE_SIZE as PRODUCER_DEFAULT_SIZE


def _images(n=3, h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    # Smooth structure as well as noise, so every family sees texture at several scales.
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = ((np.sin(xx / 5.0) + np.cos(yy / 7.0)) * 60 + 128).astype(np.uint8)
    return (base // 2 + ramp[None] // 2).astype(np.uint8)


def test_default_config_round_trips_through_json():
    config = FeatureConfig()
    again = FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert config.to_dict()["hog.orientations"] == config.hog_orientations


def test_custom_config_round_trips_and_features_are_put_in_canonical_order():
    config = FeatureConfig(features=("sift", "gabor", "hog"), glcm_levels=64, lbp_P=(8,), lbp_R=(1.0,))
    assert config.features == ("hog", "gabor", "sift")
    assert FeatureConfig.from_dict(config.to_dict()) == config


def test_from_dict_rejects_unknown_keys():
    d = FeatureConfig().to_dict()
    d["hog.orientation"] = 9
    with pytest.raises(ValueError, match="hog.orientation"):
        FeatureConfig.from_dict(d)


def test_from_options_parses_spark_strings():
    config = FeatureConfig.from_options({
        "features": "lbp,hog", "hog.orientations": "12", "hog.pixels_per_cell": "8,16",
        "hog.transform_sqrt": "true", "lbp.P": "8,16", "lbp.R": "1,2.5", "glcm.levels": "64",
        "gabor.frequencies": "0.05,0.25", "sift.n_words": "50",
        "host": "127.0.0.1",  # other components' options are left alone
    })
    assert config.features == ("hog", "lbp")
    assert config.hog_orientations == 12
    assert config.hog_pixels_per_cell == (8, 16)
    assert config.hog_transform_sqrt is True
    assert config.lbp_R == (1.0, 2.5)
    assert config.glcm_levels == 64
    assert config.gabor_frequencies == (0.05, 0.25)
    assert config.sift_n_words == 50


@pytest.mark.parametrize("options, needle", [
    ({"hog.orientations": "nine"}, "hog.orientations"),
    ({"hog.orientations": "0"}, "hog.orientations"),
    ({"hog.orientation": "9"}, "unknown feature option 'hog.orientation'"),
    ({"features": "hog,colour"}, "colour"),
    ({"features": ""}, "at least one"),
    ({"features": "hog,hog"}, "repeats"),
    ({"gabor.frequencies": "0.1,0.5"}, "Nyquist"),
    ({"glcm.levels": "300"}, "glcm.levels"),
    ({"glcm.props": "contrast,sharpness"}, "sharpness"),
    ({"lbp.method": "fancy"}, "lbp.method"),
    ({"lbp.P": "8,16", "lbp.R": "1"}, "pair up"),
    ({"hog.transform_sqrt": "maybe"}, "hog.transform_sqrt"),
    ({"sift.sigma": "nan"}, "sift.sigma"),
])
def test_from_options_errors_name_the_bad_option(options, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        FeatureConfig.from_options(options)


def test_config_is_immutable():
    with pytest.raises(Exception):
        FeatureConfig().hog_orientations = 3  # type: ignore[misc]


def test_extract_shapes_and_family_order_match_reference_blocks():
    config = FeatureConfig(features=("hog", "lbp", "glcm", "gabor"), hog_pixels_per_cell=(8, 16),
                           hog_cells_per_block=2, lbp_P=(8, 16), lbp_R=(1.0, 2.0), glcm_levels=32,
                           glcm_distances=(1, 3), gabor_frequencies=(0.2, 0.4), gabor_thetas=(0.0, math.pi / 2),
                           lbp_grid=1, glcm_grid=1, gabor_grid=1)
    images = _images()
    X = extract(images, config, backend="skimage")
    assert X.dtype == np.float32
    assert X.shape == (3, n_features(config, images.shape[1:]))
    assert len(feature_names(config, images.shape[1:])) == X.shape[1]
    expected = np.hstack([
        reference.hog_batch(images, pixels_per_cell=(8, 8), cells_per_block=(2, 2)),
        reference.hog_batch(images, pixels_per_cell=(16, 16), cells_per_block=(2, 2)),
        reference.lbp_histogram_batch(images, P=8, R=1.0),
        reference.lbp_histogram_batch(images, P=16, R=2.0),
        reference.glcm_props_batch((images.astype(np.uint16) * 32 >> 8).astype(np.uint8), distances=(1, 3),
                                   levels=32),
        reference.gabor_bank_batch(images, frequencies=(0.2, 0.4), thetas=(0.0, math.pi / 2)),
    ]).astype(np.float32)
    np.testing.assert_array_equal(X, expected)
    names = feature_names(config, images.shape[1:])
    assert names[0].startswith("hog.") and names[-1].startswith("gabor.")


def test_spatial_grids_compute_each_tile_row_major():
    config = FeatureConfig(features=("lbp", "glcm"), lbp_P=(8, 16), lbp_R=(1.0, 2.0), lbp_grid=2,
                           glcm_grid=3, glcm_levels=256, glcm_distances=(1,), glcm_props=("contrast",))
    images = _images(n=2, h=50, w=40)
    X = extract(images, config, backend="skimage")
    # 50 rows split at 0, 25, 50; 40 columns at 0, 20, 40 (grid 2); grid 3: rows 0,16,33,50, cols 0,13,26,40.
    tl, tr = images[:, :25, :20], images[:, :25, 20:]
    bl, br = images[:, 25:, :20], images[:, 25:, 20:]
    lbp = [reference.lbp_histogram_batch(np.ascontiguousarray(t), P=P, R=R)
           for P, R in ((8, 1.0), (16, 2.0)) for t in (tl, tr, bl, br)]
    r, c = (0, 16, 33, 50), (0, 13, 26, 40)
    glcm = [reference.glcm_props_batch(np.ascontiguousarray(images[:, r[i]:r[i + 1], c[j]:c[j + 1]]),
                                       distances=(1,), props=("contrast",)) for i in range(3) for j in range(3)]
    np.testing.assert_array_equal(X, np.hstack(lbp + glcm).astype(np.float32))
    names = feature_names(config, images.shape[1:])
    assert len(names) == X.shape[1] == 4 * 10 + 4 * 18 + 9 * 4
    assert names[0] == "lbp.P8R1.t0_0.bin0" and names[-1].startswith("glcm.t2_2.contrast")
    with pytest.raises(ValueError, match="too small for a 9x9 grid"):
        extract(images, FeatureConfig(features=("lbp",), lbp_grid=9), backend="skimage")


def test_extract_ignores_sift_and_converts_colour_to_grey():
    import cv2

    grey_cfg = FeatureConfig(features=("lbp", "sift"), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
    rgb = np.stack([np.dstack([_images(1)[0], _images(1, seed=1)[0], _images(1, seed=2)[0]])] * 2)
    X = extract(rgb, grey_cfg, backend="skimage")
    grey = np.stack([cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) for img in rgb])
    np.testing.assert_array_equal(X, extract(grey, grey_cfg, backend="skimage"))
    assert X.shape == (2, 10)


def test_extract_empty_batch_and_bad_input():
    config = FeatureConfig(features=("hog",), hog_pixels_per_cell=(8,))
    assert extract(np.zeros((0, 64, 64), np.uint8), config, backend="skimage").shape == (0, n_features(config, (64, 64)))
    with pytest.raises(TypeError, match="uint8"):
        extract(np.zeros((1, 64, 64), np.float32), config, backend="skimage")
    with pytest.raises(ValueError, match="too small for HOG"):
        extract(np.zeros((1, 16, 16), np.uint8), config, backend="skimage")
    with pytest.raises(ValueError, match="backend"):
        extract(np.zeros((1, 64, 64), np.uint8), config, backend="cuda")


def test_extract_read_only_images():
    images = _images()
    images.setflags(write=False)
    config = FeatureConfig(features=("glcm",), glcm_levels=256, glcm_grid=2)
    assert extract(images, config, backend="skimage").shape == (3, n_features(config, images.shape[1:]))


needs_rust = pytest.mark.skipif(not hasattr(featrs, "hog_batch"), reason="featrs batch functions not built")


@needs_rust
@pytest.mark.parametrize("families", [("hog",), ("lbp",), ("glcm",), ("gabor",), ("hog", "lbp", "glcm", "gabor")])
def test_rust_backend_equals_skimage(families):
    config = FeatureConfig(features=families, hog_pixels_per_cell=(8, 16), hog_cells_per_block=2,
                           gabor_frequencies=(0.15, 0.35), gabor_grid=2)
    images = _images(n=4, h=64, w=64, seed=3)
    rust = extract(images, config, backend="rust", n_threads=2)
    skimage = extract(images, config, backend="skimage")
    np.testing.assert_allclose(rust, skimage, rtol=1e-5, atol=1e-6)


@needs_rust
def test_rust_backend_equals_skimage_on_the_default_configuration():
    h, w = PRODUCER_DEFAULT_SIZE
    images = _images(n=2, h=h, w=w, seed=4)
    np.testing.assert_allclose(extract(images, FeatureConfig(), backend="rust"),
                               extract(images, FeatureConfig(), backend="skimage"), rtol=1e-5, atol=1e-6)


def test_min_image_side_is_what_check_image_size_accepts():
    config = FeatureConfig()
    side = F.min_image_side(config)
    assert side == 384  # 128-px HOG cells in 3x3-cell blocks
    F.check_image_size(config, (side, side))
    with pytest.raises(ValueError, match="hog.pixels_per_cell"):
        F.check_image_size(config, (side - 1, side))
    small = FeatureConfig(features=("lbp",), lbp_grid=4)
    assert F.min_image_side(small) == 4 * F.MIN_TILE_SIDE


def test_default_image_size_fits_default_config():
    h, w = PRODUCER_DEFAULT_SIZE
    assert n_features(FeatureConfig(), (h, w)) == 324 + 486 + 384
    with pytest.raises(ValueError, match="too small for HOG"):
        n_features(FeatureConfig(), (h // 2, w // 2))


def test_n_features_counts_the_names_and_is_computed_once_per_configuration_and_size():
    from consumer.features import layout

    config = FeatureConfig(features=("hog", "glcm"), hog_pixels_per_cell=(16,), glcm_grid=3)
    for shape in ((96, 80), (96, 80, 3), (64, 64)):
        assert n_features(config, shape) == len(feature_names(config, shape))
    before = layout._n_features.cache_info().hits
    assert n_features(FeatureConfig.from_dict(config.to_dict()), (96, 80, 1)) == len(feature_names(config, (96, 80)))
    assert layout._n_features.cache_info().hits == before + 1  # an equal config, rebuilt, hits
    with pytest.raises(ValueError, match="image_shape"):
        n_features(config, (0, 64))


def test_rust_backend_dispatches_to_featrs_batch_functions_with_n_threads(monkeypatch):
    """The rust path calls featrs.<name>_batch (stood in for by the reference) with n_threads."""
    seen = []

    def spy(name):
        def call(images, *args, n_threads=None, **kwargs):
            seen.append((name, n_threads))
            return getattr(reference, name)(images, *args, n_threads=n_threads, **kwargs)
        return call

    for name in ("hog_batch", "lbp_histogram_grid_batch", "glcm_props_grid_batch", "gabor_bank_batch"):
        monkeypatch.setattr(featrs, name, spy(name), raising=False)
    config = FeatureConfig(features=("hog", "lbp", "glcm", "gabor"), hog_pixels_per_cell=(8,),
                           lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1, glcm_grid=1, gabor_frequencies=(0.25,))
    images = _images(n=2, h=32, w=32)
    np.testing.assert_array_equal(extract(images, config, backend="rust", n_threads=2),
                                  extract(images, config, backend="skimage"))
    assert seen == [("hog_batch", 2), ("lbp_histogram_grid_batch", 2), ("glcm_props_grid_batch", 2),
                    ("gabor_bank_batch", 2)]


def test_rust_backend_without_batch_functions_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(featrs, "hog_batch", raising=False)
    with pytest.raises(RuntimeError, match="featrs.hog_batch is missing"):
        extract(_images(n=1), FeatureConfig(features=("lbp",)), backend="rust")


@pytest.mark.parametrize("levels", [2, 3, 7, 16, 31, 32, 33, 64, 100, 128, 255, 256])
def test_quantize_is_v_times_levels_over_256_for_every_grey_value(levels):
    from consumer.features.extract import quantize

    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = quantize(values, levels)
    assert out.dtype == np.uint8 and out.shape == values.shape
    np.testing.assert_array_equal(out.ravel(), np.arange(256) * levels // 256)
