"""Cost of each producer.framing step next to the decode it follows, per image, and of the output size.

Every round runs one step over the same :data:`N_IMAGES` pictures of the train split
(CHESTCT_DATA; a synthetic CT-like slice otherwise), so medians divided by
``N_IMAGES`` are seconds per image. ``decode`` is ``cv2.imdecode`` of the file bytes
(grey), ``resize`` the plain INTER_AREA resize to 256x256 the producer always does;
the framing steps run on the decoded full-size pictures, as in ``imaging.decode``.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import framing

GROUP = "framing step, full-size slice"
N_IMAGES = 20
SIZE = (256, 256)


def _files() -> list[bytes]:
    root = os.environ.get("CHESTCT_DATA")
    if root and (Path(root) / "train").is_dir():
        paths = sorted(p for p in (Path(root) / "train").rglob("*") if p.suffix.lower() in (".png", ".jpg"))
        return [p.read_bytes() for p in paths[:: max(1, len(paths) // N_IMAGES)][:N_IMAGES]]
    from benches.sample_images import image
    return [cv2.imencode(".png", cv2.resize(image(256, i), (420, 300)))[1].tobytes() for i in range(N_IMAGES)]


@pytest.fixture(scope="module")
def encoded() -> list[bytes]:
    return _files()


@pytest.fixture(scope="module")
def decoded(encoded) -> list[np.ndarray]:
    return [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE) for b in encoded]


def _run(benchmark, impl: str, step, items) -> None:
    benchmark.group = GROUP
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["images"] = len(items)
    out = benchmark(lambda: [step(x) for x in items])
    assert len(out) == len(items) and all(o.dtype == np.uint8 and o.size for o in out)


def test_decode(benchmark, encoded):
    _run(benchmark, "decode", lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE), encoded)


def test_resize(benchmark, decoded):
    _run(benchmark, "resize 256", lambda im: cv2.resize(im, SIZE, interpolation=cv2.INTER_AREA), decoded)


def test_body_crop(benchmark, decoded):
    _run(benchmark, "crop body", framing.crop, decoded)


@pytest.fixture(scope="module")
def crops(decoded) -> list[np.ndarray]:
    return [framing.crop(im) for im in decoded]


def test_pad(benchmark, crops):
    _run(benchmark, "aspect pad", lambda im: framing.pad_to_aspect(im, *SIZE), crops)


@pytest.mark.parametrize("method", [m for m in framing.DENOISERS if m != "none"])
def test_denoise(benchmark, crops, method):
    _run(benchmark, f"denoise {method}", lambda im: framing.denoise(im, method), crops)


@pytest.mark.parametrize("method", ["clahe", "percentile"])
def test_normalize(benchmark, crops, method):
    _run(benchmark, f"normalize {method}", lambda im: framing.normalize(im, method), crops)


@pytest.mark.parametrize("side", [256, 384, 512])
def test_default_features_at_output_size(benchmark, crops, side):
    """What a larger output size costs downstream: the default families (featrs, 1 thread)."""
    from consumer.features import FeatureConfig, extract

    config = FeatureConfig(hog_pixels_per_cell=(side // 4,))
    batch = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) for c in crops])
    benchmark.group = "hog+lbp+glcm per batch of resized crops"
    benchmark.extra_info["impl"] = f"featrs {side}px"
    benchmark.extra_info["images"] = len(batch)
    out = benchmark(extract, batch, config, "rust", 1)
    assert out.shape[0] == len(batch) and np.isfinite(out).all()
