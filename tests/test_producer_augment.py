"""producer.augment and the augmented training copies of a train stream (issue 12)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import augment, cli
from producer.batch import build_batch, load_image
from producer.stream import StreamSpec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import robustness  # noqa: E402


@pytest.fixture
def tiny(synthetic_dataset) -> Path:
    return synthetic_dataset(3)


def _originals(spec: StreamSpec) -> list[str]:
    return [f.id for f in spec.files if f.augment is None]


def test_the_command_line_augments_the_train_split_by_default(tiny):
    ap = cli.build_parser()
    spec = cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--no-progress"]), ap)
    assert spec.split == "train"
    assert spec.augment == augment.DEFAULT_TRAIN_COPIES == len(augment.COPY_PERTURBATIONS)
    assert len(spec.files) == (1 + augment.DEFAULT_TRAIN_COPIES) * len(_originals(spec))
    for split in ("valid", "dev", "test"):
        other = cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--split", split, "--no-progress"]), ap)
        assert other.augment == 0 and "augment" not in other.hello(), split


def test_the_library_streams_only_the_copies_it_is_asked_for(tiny):
    assert StreamSpec.from_directory(tiny, "train", batch_size=4).augment == 0


def test_one_copy_per_picture(tiny):
    spec = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=1)
    originals = _originals(spec)
    assert len(spec.files) == 2 * len(originals)
    assert sorted(f.id for f in spec.files if f.augment == 1) == sorted(f"{i}#augment=1" for i in originals)
    assert spec.hello()["augment"]["copies"] == 1
    assert spec.hello()["augment"]["perturbations"] == [augment.COPY_PERTURBATIONS[0]]
    assert spec.hello()["images_per_epoch"] == len(spec.files)


def test_augment_zero_gives_the_unaugmented_stream_and_its_id(tiny):
    off = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=0)
    on = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=1)
    two = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=2)
    assert [f.id for f in off.files] == _originals(on)
    assert "augment" not in off.hello()
    assert len({off.stream_id, on.stream_id, two.stream_id}) == 3
    assert len(two.files) == 3 * len(off.files)


def test_a_copy_is_the_picture_rerendered_the_same_way_every_time(tiny, tmp_path):
    spec = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=1)
    copy = next(f for f in spec.files if f.augment == 1)
    original = next(f for f in spec.files if f.id == copy.id.split("#")[0])
    a, b, o = load_image(copy, spec), load_image(copy, spec), load_image(original, spec)
    assert a.shape == o.shape == spec.preprocessing.image_shape
    np.testing.assert_array_equal(a, b)
    assert augment.perturbation_of(1) == "noise"
    assert np.mean(a != o) > 0.5  # noise changes most pixels
    # The copy is what scripts/robustness.py would write for the same draws, decoded as usual.
    # Written under tmp_path: render() sets the suffix, so a target beside the original would
    # overwrite it in the dataset the session's tests share.
    expected = robustness.render(original.path, tmp_path / "copy.png", augment.perturbation_of(1),
                                 augment.copy_rng(copy.digest, 1))
    from producer import imaging
    np.testing.assert_array_equal(a, imaging.decode(expected.read_bytes(), spec.preprocessing))


def test_batches_with_copies_rebuild_byte_for_byte(tiny):
    spec = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=1)
    again = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=1)
    assert spec.stream_id == again.stream_id
    for seq in range(spec.batches_per_epoch):
        assert build_batch(spec, seq).frame == build_batch(again, seq).frame


def test_copy_draws_never_repeat_the_robustness_seeds():
    digest = "ab" * 32
    draws = augment.copy_rng(digest, 1).random(4)
    assert not np.array_equal(draws, augment.copy_rng(digest, 2).random(4))
    for seed in range(3):
        for index in range(len(augment.PERTURBATIONS)):
            assert not np.array_equal(draws, np.random.default_rng([seed, index, 0]).random(4))


def test_perturbations_change_the_picture_and_keep_its_size():
    image = np.full((40, 50), 120, np.uint8)
    image[10:30, 10:40] = 200
    for name in augment.PERTURBATIONS:
        data = augment.rerender(augment.encode(image, None), name, np.random.default_rng(0))
        out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert out.shape == image.shape, name
        assert not np.array_equal(out, image), name


@pytest.mark.parametrize("bad", [-1, augment.MAX_COPIES + 1, 1.5, True, "1"])
def test_bad_copy_counts_are_refused(tiny, bad):
    with pytest.raises(ValueError, match="--augment"):
        StreamSpec.from_directory(tiny, "train", batch_size=4, augment=bad)


def test_unknown_perturbation_and_undecodable_bytes_are_clear_errors():
    with pytest.raises(ValueError, match="perturbation must be one of"):
        augment.perturb(np.zeros((4, 4), np.uint8), "blur", np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot decode"):
        augment.rerender(b"not a picture", "all", np.random.default_rng(0))
    with pytest.raises(ValueError, match="copy must be"):
        augment.copy_rng("ab" * 32, 0)


def test_the_cli_passes_augment_and_refuses_negative_counts(tiny, capsys):
    ap = cli.build_parser()
    spec = cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--augment", "0", "--no-progress"]), ap)
    assert spec.augment == 0
    assert cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--augment", "2", "--no-progress"]),
                              ap).augment == 2
    assert cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--no-progress"]),
                              ap).augment == augment.DEFAULT_TRAIN_COPIES
    with pytest.raises(SystemExit):
        ap.parse_args(["--directory", str(tiny), "--augment", "-1"])
    assert "--augment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.spec_from_args(ap.parse_args(["--directory", str(tiny), "--augment", "99"]), ap)
    assert "--augment must be" in capsys.readouterr().err


def test_copies_take_the_perturbations_in_turn(tiny):
    n = len(augment.COPY_PERTURBATIONS)
    assert [augment.perturbation_of(k) for k in range(1, 2 * n + 1)] == 2 * list(augment.COPY_PERTURBATIONS)
    spec = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=n)
    assert spec.hello()["augment"]["perturbations"] == list(augment.COPY_PERTURBATIONS)
    # Each copy differs from the picture and from the other copies.
    name = _originals(spec)[0]
    images = [load_image(f, spec) for f in spec.files if f.id.split("#")[0] == name]
    assert len(images) == n + 1
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j]), (i, j)


def _round_trip(spec: StreamSpec, file) -> np.ndarray:
    """A copy as a re-rendered file would give it: PNG/JPEG bytes, then the usual decode."""
    from producer import imaging, reading
    data = augment.rerender(reading.read_image(file, spec.root, spec.preprocessing),
                            augment.perturbation_of(file.augment), augment.copy_rng(file.digest, file.augment))
    return imaging.decode(data, spec.preprocessing)


def _both_colour_modes(root: Path, size: tuple[int, int]):
    from producer import imaging
    for mode in ("grayscale", "rgb"):
        yield StreamSpec.from_directory(root, "train", batch_size=4, augment=len(augment.COPY_PERTURBATIONS),
                                        preprocessing=imaging.Preprocessing(image_size=size, color_mode=mode))


@pytest.mark.parametrize("size", [(64, 64), (37, 53)])
def test_every_copy_served_without_the_png_round_trip_is_the_round_trip_s_pixels(tiny, size):
    for spec in _both_colour_modes(tiny, size):
        copies = [f for f in spec.files if f.augment is not None]
        assert {augment.perturbation_of(f.augment) for f in copies} == set(augment.COPY_PERTURBATIONS)
        for file in copies:
            np.testing.assert_array_equal(load_image(file, spec), _round_trip(spec, file), err_msg=file.id)


@pytest.mark.realdata
def test_real_copies_served_without_the_round_trip_are_the_round_trip_s_pixels(real_data):
    for spec in _both_colour_modes(real_data, (256, 256)):
        copies = [f for f in spec.files if f.augment is not None][::97]
        assert len(copies) >= 30
        for file in copies:
            np.testing.assert_array_equal(load_image(file, spec), _round_trip(spec, file), err_msg=file.id)


def test_the_png_grey_weights_are_opencv_s_for_every_24_bit_colour():
    levels = np.arange(256, dtype=np.uint8)
    blue, green, red = np.meshgrid(levels, levels, levels, indexing="ij")
    every = np.stack([blue, green, red], axis=-1).reshape(4096, 4096, 3)
    png = cv2.imencode(".png", every, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1]
    np.testing.assert_array_equal(augment.as_png_decoded(every, grey=True), cv2.imdecode(png, cv2.IMREAD_GRAYSCALE))
    assert augment._png_grey_agrees()
    # Not cvtColor's weights: those round, and differ on about half of all colours.
    assert np.mean(augment.as_png_decoded(every, grey=True) != cv2.cvtColor(every, cv2.COLOR_BGR2GRAY)) > 0.3


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (41, 67, 3), (41, 67)])
@pytest.mark.parametrize("grey", [True, False])
def test_png_decoded_pixels_match_opencv_on_random_pictures_of_odd_sizes(shape, grey):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    expected = cv2.imdecode(np.frombuffer(augment.encode(image, None), np.uint8),
                            cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(augment.as_png_decoded(image, grey=grey), expected)


def test_without_matching_weights_the_png_round_trip_is_kept(monkeypatch):
    image = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    monkeypatch.setattr(augment, "_png_grey_agrees", lambda: False)
    monkeypatch.setattr(augment, "_png_grey", lambda image: pytest.fail("the shortcut was used"))
    expected = cv2.imdecode(np.frombuffer(augment.encode(image, None), np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(augment.as_png_decoded(image, grey=True), expected)


@pytest.mark.parametrize("shape", [(31, 17), (20, 33, 3)])
def test_noise_draws_the_documented_numbers(shape):
    image = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    expected = np.clip(image.astype(np.float32) + np.random.default_rng(9).normal(0, augment.NOISE_SIGMA, shape),
                       0, 255).round().astype(np.uint8)
    got, quality = augment.perturb(image, "noise", np.random.default_rng(9))
    assert quality is None
    np.testing.assert_array_equal(got, expected)


def _png(value: int, side: int = 8) -> bytes:
    return augment.encode(np.full((side, side), value, np.uint8), None)


def test_the_picture_cache_keeps_recent_pictures_within_its_budget():
    cache = augment.PictureCache(limit_bytes=2 * 64)  # two 8 x 8 grey pictures
    first = cache.picture("a", _png(10))
    assert cache.picture("a", b"not decoded on a hit") is first
    assert not first.flags.writeable  # copies share it: nobody may change it in place
    cache.picture("b", _png(20))
    cache.picture("a", _png(10))      # a is now the most recent
    cache.picture("c", _png(30))      # over budget: b, the least recent, goes
    assert len(cache) == 2 and cache.nbytes == 128
    assert int(cache.picture("b", _png(21))[0, 0]) == 21  # decoded again
    assert int(cache.picture(None, _png(40))[0, 0]) == 40 and len(cache) == 2  # no digest: not kept
    nothing = augment.PictureCache(limit_bytes=0)
    nothing.picture("a", _png(10))
    assert len(nothing) == 0
    with pytest.raises(ValueError, match="budget"):
        augment.PictureCache(limit_bytes=-1)
    with pytest.raises(ValueError, match="cannot decode"):
        cache.picture("d", b"garbage")


def test_copies_from_cached_pictures_are_the_copies_decoded_afresh(tiny, monkeypatch):
    spec = StreamSpec.from_directory(tiny, "train", batch_size=4, augment=len(augment.COPY_PERTURBATIONS))
    warm = augment.PictureCache()
    monkeypatch.setattr(augment, "pictures", warm)
    cached = [build_batch(spec, seq).frame for seq in range(spec.batches_per_epoch)]
    assert len(warm) == len(_originals(spec))  # every picture decoded once for its copies
    monkeypatch.setattr(augment, "pictures", augment.PictureCache(limit_bytes=0))
    assert [build_batch(spec, seq).frame for seq in range(spec.batches_per_epoch)] == cached
