"""Decoding one image: formats, depths, channels, resizing, and every way a file can be bad."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import imaging

# The decode and resize alone: no framing step (tests/test_producer_framing.py has those).
PLAIN = {"crop": "none", "denoise": "none"}
GRAY = imaging.Preprocessing(**PLAIN, image_size=(16, 12))
RGB = imaging.Preprocessing(**PLAIN, image_size=(16, 12), color_mode="rgb")


def write(path: Path, pixels: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), pixels)
    return path


def png_with_header(width: int, height: int, tail: bytes = b"\x00" * 100) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return imaging.PNG_SIGNATURE + chunk + tail


@pytest.fixture
def gradient() -> np.ndarray:
    return np.tile(np.arange(0, 240, 8, dtype=np.uint8), (20, 1))  # 20 x 30


def test_grey_rgb_rgba_and_jpeg_decode_to_the_requested_shape(tmp_path, gradient):
    files = {
        "l.png": gradient,
        "rgb.png": cv2.cvtColor(gradient, cv2.COLOR_GRAY2BGR),
        "rgba.png": cv2.cvtColor(gradient, cv2.COLOR_GRAY2BGRA),
        "l.jpg": gradient,
        "rgb.jpeg": cv2.cvtColor(gradient, cv2.COLOR_GRAY2BGR),
    }
    for name, pixels in files.items():
        path = write(tmp_path / name, pixels)
        grey = imaging.load(path, GRAY)
        rgb = imaging.load(path, RGB)
        assert grey.shape == (16, 12, 1) and grey.dtype == np.uint8
        assert rgb.shape == (16, 12, 3) and rgb.dtype == np.uint8
        expected = cv2.resize(gradient, (12, 16), interpolation=cv2.INTER_AREA)
        tolerance = 6 if "jp" in name else 1  # JPEG is lossy
        assert np.abs(grey[..., 0].astype(int) - expected).max() <= tolerance, name
        assert np.abs(rgb[..., 1].astype(int) - expected).max() <= tolerance, name


def test_rgb_channel_order_is_r_g_b(tmp_path):
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 100, 200  # B, G, R on disk
    out = imaging.load(write(tmp_path / "c.png", bgr), RGB)
    assert out[0, 0].tolist() == [200, 100, 10]
    grey = imaging.load(tmp_path / "c.png", GRAY)
    assert abs(int(grey[0, 0, 0]) - round(0.299 * 200 + 0.587 * 100 + 0.114 * 10)) <= 1


def test_alpha_is_dropped_not_composited(tmp_path):
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., :3] = 180
    bgra[..., 3] = 0  # fully transparent
    out = imaging.load(write(tmp_path / "a.png", bgra), GRAY)
    assert (out == 180).all()


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    levels = np.array([0, 1, 128, 255], dtype=np.uint16) * 257  # exact 8-bit levels in 16 bits
    img16 = np.tile(levels, (4, 1))
    prep = imaging.Preprocessing(**PLAIN, image_size=(4, 4), interpolation="nearest")
    out = imaging.load(write(tmp_path / "deep.png", img16), prep)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    rgb16 = cv2.cvtColor(img16, cv2.COLOR_GRAY2BGR)
    out = imaging.load(write(tmp_path / "deep_rgb.png", rgb16),
                       imaging.Preprocessing(**PLAIN, image_size=(4, 4), color_mode="rgb", interpolation="nearest"))
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize("name, flag", list(imaging.INTERPOLATIONS.items()))
def test_interpolation_is_the_requested_one(tmp_path, name, flag):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 50), dtype=np.uint8)
    prep = imaging.Preprocessing(**PLAIN, image_size=(17, 23), interpolation=name)
    out = imaging.load(write(tmp_path / "n.png", pixels), prep)
    np.testing.assert_array_equal(out[..., 0], cv2.resize(pixels, (23, 17), interpolation=flag))


def test_interpolations_differ(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, size=(40, 50), dtype=np.uint8)
    path = write(tmp_path / "n.png", pixels)
    outs = {n: imaging.load(path, imaging.Preprocessing(**PLAIN, image_size=(17, 23), interpolation=n))
            for n in imaging.INTERPOLATIONS}
    assert len({o.tobytes() for o in outs.values()}) == len(outs)


def test_header_dimensions_of_png_and_jpeg(tmp_path, gradient):
    for name in ("x.png", "x.jpg"):
        path = write(tmp_path / name, gradient)
        with open(path, "rb") as fh:
            kind, width, height = imaging.image_dimensions(fh)
        assert (width, height) == (30, 20) and kind in name.replace("jpg", "jpeg")


def test_jpeg_dimensions_after_a_large_metadata_segment(tmp_path, gradient):
    ok, jpeg = cv2.imencode(".jpg", gradient)
    data = jpeg.tobytes()
    app = b"\xff\xe1" + struct.pack(">H", 65535) + b"\x00" * 65533  # a 64 KiB APP1 before the frame
    data = data[:2] + app * 3 + data[2:]
    kind, width, height = imaging.image_dimensions(io.BytesIO(data))
    assert (kind, width, height) == ("jpeg", 30, 20)
    (tmp_path / "meta.jpg").write_bytes(data)
    assert imaging.load(tmp_path / "meta.jpg", GRAY).shape == (16, 12, 1)


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(100_000, 100_000))
    with pytest.raises(imaging.ImageSkipped, match=r"100000x100000 = 10000\.0 MPixel.*bomb"):
        imaging.load(path, GRAY)


def test_pixel_limit_is_configurable(tmp_path, gradient):
    path = write(tmp_path / "g.png", gradient)  # 600 pixels
    with pytest.raises(imaging.ImageSkipped, match="MPixel limit"):
        imaging.load(path, imaging.Preprocessing(**PLAIN, image_size=(4, 4), max_image_pixels=599))
    assert imaging.load(path, imaging.Preprocessing(**PLAIN, image_size=(4, 4), max_image_pixels=600)).shape == (4, 4, 1)


def test_file_size_limit(tmp_path, gradient):
    path = write(tmp_path / "g.png", gradient)
    with pytest.raises(imaging.ImageSkipped, match="MiB limit"):
        imaging.load(path, imaging.Preprocessing(max_file_bytes=10))


def _bad_files(tmp_path: Path, gradient: np.ndarray) -> dict[str, tuple[bytes, str]]:
    ok, png = cv2.imencode(".png", gradient)
    ok, jpg = cv2.imencode(".jpg", gradient)
    png, jpg = png.tobytes(), jpg.tobytes()
    return {
        "truncated.png": (png[: len(png) // 2], "cannot decode"),
        "truncated_header.png": (png[:12], "truncated PNG header"),
        "truncated.jpg": (jpg[: len(jpg) // 2], "cannot decode"),
        "random.png": (np.random.default_rng(2).bytes(4000), "not a PNG or JPEG"),
        "empty.png": (b"", "not a PNG or JPEG"),
        "text.jpg": (b"just some text", "not a PNG or JPEG"),
        "no_ihdr.png": (imaging.PNG_SIGNATURE + b"\x00\x00\x00\x0dIEND" + b"\x00" * 20, "IHDR"),
        "jpeg_without_frame.jpg": (b"\xff\xd8\xff\xda\x00\x02" + b"\x00" * 20, "start-of-frame"),
        "zero_size.png": (png_with_header(0, 10), "empty 0x10"),
        "garbage_after_header.png": (png_with_header(30, 20, b"\x12" * 500), "cannot decode"),
    }


def test_bad_files_raise_image_skipped_with_a_reason(tmp_path, gradient):
    for name, (data, reason) in _bad_files(tmp_path, gradient).items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(imaging.ImageSkipped, match=reason):
            imaging.load(path, GRAY)


def test_missing_file_is_skipped_with_a_reason(tmp_path):
    with pytest.raises(imaging.ImageSkipped, match="cannot read file"):
        imaging.load(tmp_path / "gone.png", GRAY)


def test_png_named_jpg_still_decodes(tmp_path, gradient):
    ok, png = cv2.imencode(".png", gradient)
    (tmp_path / "really_png.jpg").write_bytes(png.tobytes())
    assert imaging.load(tmp_path / "really_png.jpg", GRAY).shape == (16, 12, 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": (0, 5)}, "positive"),
    ({"image_size": (5.5, 5)}, "positive"),
    ({"color_mode": "cmyk"}, "color_mode"),
    ({"interpolation": "lanczos"}, "interpolation"),
    ({"max_image_pixels": 0}, ">= 1"),
])
def test_preprocessing_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        imaging.Preprocessing(**kwargs)


def test_preprocessing_description_names_the_decoder():
    info = imaging.Preprocessing(**PLAIN, image_size=(64, 32), color_mode="rgb").describe()
    assert info["image_size"] == [64, 32] and info["color_mode"] == "rgb"
    assert info["decoder"] == "opencv" and info["decoder_version"] == cv2.__version__
    assert imaging.Preprocessing(**PLAIN, image_size=(64, 32), color_mode="rgb").image_shape == (64, 32, 3)


@pytest.mark.realdata
def test_every_real_image_decodes(real_data):
    from producer import dataset
    for split in dataset.SPLITS:
        _, files = dataset.list_images(real_data, split)
        for f in files:
            out = imaging.load(f.path, GRAY)
            assert out.shape == (16, 12, 1), f.id
