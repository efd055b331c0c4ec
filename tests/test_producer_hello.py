"""The hello declares everything that shapes the pixels, and the limits apart."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import pytest

from producer import dicom, framing, imaging, wire
from producer.stream import StreamSpec


@pytest.fixture(scope="module")
def tiny_data(synthetic_dataset) -> Path:
    return synthetic_dataset(1)


@dataclasses.dataclass(frozen=True)
class _Contrast:
    center: int = 40
    width: int = 400

    def describe(self) -> dict:
        return {"center": self.center, "width": self.width}


@dataclasses.dataclass(frozen=True)
class _WithMoreFields(imaging.Preprocessing):
    """What another helper's fields (a crop, a nested settings object) look like to describe()."""

    roi: tuple[int, int, int, int] | None = (1, 2, 3, 4)
    contrast: _Contrast = dataclasses.field(default_factory=_Contrast)


def test_preprocessing_holds_exactly_the_pixel_shaping_fields():
    prep = imaging.Preprocessing(image_size=(32, 16), color_mode="rgb", interpolation="bicubic")
    assert prep.describe() == {"image_size": [32, 16], "color_mode": "rgb", "interpolation": "bicubic",
                               "window": dicom.DEFAULT_WINDOW, "crop": framing.DEFAULT_CROP,
                               "crop_margin": framing.DEFAULT_CROP_MARGIN, "aspect": framing.DEFAULT_ASPECT,
                               "normalize": framing.DEFAULT_NORMALIZE, "denoise": framing.DEFAULT_DENOISE,
                               "decoder": "opencv",
                               "decoder_version": cv2.__version__, "dicom_decoder": dicom.decoder_description()}
    assert prep.limits() == {"max_image_pixels": imaging.DEFAULT_MAX_IMAGE_PIXELS,
                             "max_file_bytes": imaging.DEFAULT_MAX_FILE_BYTES}


@pytest.mark.parametrize("denoise", framing.DENOISERS)
def test_every_denoiser_reaches_the_hello(tiny_data, denoise):
    prep = imaging.Preprocessing(image_size=(16, 16), denoise=denoise)
    hello = StreamSpec.from_directory(tiny_data, "train", batch_size=2, preprocessing=prep).hello()
    assert hello["preprocessing"]["denoise"] == denoise
    assert hello["preprocessing"] == json.loads(json.dumps(prep.describe()))


def test_new_fields_are_announced_without_touching_describe():
    info = _WithMoreFields(image_size=(8, 8)).describe()
    assert info["roi"] == [1, 2, 3, 4] and info["contrast"] == {"center": 40, "width": 400}
    assert not set(info) & set(imaging.LIMIT_FIELDS)
    json.dumps(info)  # JSON-able, as the hello needs


def test_hello_fields_and_version(tiny_data):
    spec = StreamSpec.from_directory(tiny_data, "train", batch_size=2,
                                     preprocessing=imaging.Preprocessing(image_size=(16, 16)))
    hello = spec.hello()
    assert hello["protocol"] == wire.PROTOCOL_VERSION == 2
    wire.check_protocol(hello)
    assert hello["preprocessing"] == spec.preprocessing.describe()
    assert hello["limits"] == spec.preprocessing.limits()
    assert hello["on_changed_file"] == "fail"
    assert wire.decode(wire.encode(hello)[4:]) == hello
    with pytest.raises(wire.ProtocolVersionMismatch):
        wire.check_protocol(dict(hello, protocol=1))


def test_stream_id_covers_new_pixel_fields(tiny_data):
    def spec(prep):
        return StreamSpec.from_directory(tiny_data, "train", batch_size=2, preprocessing=prep)
    base = spec(_WithMoreFields(image_size=(16, 16)))
    assert spec(_WithMoreFields(image_size=(16, 16), roi=(0, 0, 3, 4))).stream_id != base.stream_id
    assert spec(_WithMoreFields(image_size=(16, 16), contrast=_Contrast(width=1500))).stream_id != base.stream_id
    assert spec(_WithMoreFields(image_size=(16, 16), max_file_bytes=10**6)).stream_id != base.stream_id
    assert spec(_WithMoreFields(image_size=(16, 16))).stream_id == base.stream_id
