"""The one check after the hello: refusals name the field and happen before Spark starts."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from consumer import cli
from consumer.features import FeatureConfig, extract
from consumer.learn.fit import fit
from consumer.learn.metadata import stream_meta
from consumer.preflight import ModelMismatch, StreamRefused, check_model, check_stream, preprocessing_differences
from producer import imaging, synthetic
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.stream import StreamSpec

SIZE = 32
CONFIG = FeatureConfig(features=("hog",), hog_pixels_per_cell=(8,), hog_cells_per_block=2)
CLASSES = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]


def _hello(**preprocessing) -> dict:
    prep = {"image_size": [SIZE, SIZE], "color_mode": "grayscale", "interpolation": "area",
            "decoder": "opencv-4.12.0", **preprocessing}
    return {"image_shape": [SIZE, SIZE, 1], "classes": CLASSES, "preprocessing": prep,
            "stream_id": "s", "split": "train", "total_images": 8}


def _meta(hello: dict) -> dict:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, SIZE, SIZE), dtype=np.uint8)
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(8)], "label": np.arange(8) % 4, "seq": 0,
                          "features": list(extract(images, CONFIG, backend="skimage")), "sift": None})
    model = fit(table, config=CONFIG, model="svm", classes=CLASSES, image_shape=(SIZE, SIZE),
                color_mode="grayscale")
    model.meta.update(stream_meta(hello, []))
    return model


def test_images_too_small_for_the_features_are_refused_naming_the_option():
    hello = {**_hello(), "image_shape": [128, 128, 1]}
    with pytest.raises(StreamRefused, match=r"128x128 images.*hog.pixels_per_cell"):
        check_stream(hello, FeatureConfig())
    check_stream({**hello, "image_shape": [512, 512, 1]}, FeatureConfig())


def test_every_declared_preprocessing_field_is_compared_by_name():
    model = _meta(_hello())
    check_model(_hello(), model.meta)
    with pytest.raises(ModelMismatch, match="preprocessing interpolation: producer sends 'nearest'.*'area'"):
        check_model(_hello(interpolation="nearest"), model.meta)
    with pytest.raises(ModelMismatch, match="preprocessing crop"):
        check_model(_hello(crop="body"), model.meta)
    # Every denoiser is a declared choice, told apart by name like any other field.
    trained = _meta(_hello(**imaging.Preprocessing(image_size=(SIZE, SIZE), denoise="median").describe()))
    for other in ("median5", "median+gaussian", "median5+gaussian", "bilateral"):
        served = _hello(**imaging.Preprocessing(image_size=(SIZE, SIZE), denoise=other).describe())
        with pytest.raises(ModelMismatch, match=f"preprocessing denoise: producer sends '{re.escape(other)}'.*'median'"):
            check_model(served, trained.meta)
    check_model(_hello(**imaging.Preprocessing(image_size=(SIZE, SIZE), denoise="median").describe()), trained.meta)
    # A decoder's version alone changes nothing that is compared; a model without a record
    # of its preprocessing is compared on size, colour and classes only.
    assert preprocessing_differences({"decoder_version": "4.8"}, {"decoder_version": "4.12"}) == []
    assert preprocessing_differences(None, _hello()["preprocessing"]) == []


def test_predict_refuses_a_producer_with_another_interpolation_before_spark(tmp_path, capsys, monkeypatch):
    from consumer import spark as spark_module

    sessions = []
    monkeypatch.setattr(spark_module, "build_session", lambda *a, **k: sessions.append(a) or pytest.fail("Spark started"))
    data = tmp_path / "data"
    synthetic.generate(data, per_class=2, progress=False)
    trained = StreamSpec.from_directory(data, "test", batch_size=4, preprocessing=imaging.Preprocessing(
        image_size=(SIZE, SIZE), interpolation="area"))
    model = _meta(trained.hello())
    model.save(tmp_path / "model")
    served = StreamSpec.from_directory(data, "test", batch_size=4, preprocessing=imaging.Preprocessing(
        image_size=(SIZE, SIZE), interpolation="nearest"))
    with running_server(served, ServerConfig(port=0, progress=False)) as server:
        code = cli.main(["predict", "--save-path", str(tmp_path / "model"), "--port", str(server.port),
                         "--work-dir", str(tmp_path / "work"), "--no-progress", "--connect-timeout", "5"])
    err = capsys.readouterr().err
    assert code == 1
    assert "ModelMismatch" in err and "preprocessing interpolation: producer sends 'nearest'" in err
    assert sessions == [], "Spark must not start for a refused model"
    assert not (tmp_path / "work").exists()
