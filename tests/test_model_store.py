"""Model directories: skops only, hashes checked, untrusted types and foreign versions refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from consumer.learn import model_store
from consumer.learn.model_store import ModelRefused


class NotOnTheAllowlist:
    """A class nobody trusted; skops stores it by its qualified name."""

    def __init__(self):
        self.value = 1


def _forest():
    X = np.random.default_rng(0).random((30, 4))
    y = np.arange(30) % 3
    return make_pipeline(StandardScaler(), RandomForestClassifier(5, random_state=0)).fit(X, y), X


def _save(tmp_path, estimator=None):
    estimator = estimator if estimator is not None else _forest()[0]
    codebook = np.arange(12, dtype=np.float32).reshape(3, 4)
    return model_store.save_model_dir(tmp_path / "m", estimators={"estimator": estimator},
                                      arrays={"codebook": codebook}, meta={"model": "rf"})


def test_round_trip_without_pickle(tmp_path):
    forest, X = _forest()
    directory = _save(tmp_path, forest)
    assert sorted(p.name for p in directory.iterdir()) == ["codebook.npy", "estimator.skops", "model.json"]
    document = json.loads((directory / "model.json").read_text())
    assert document["format_version"] == model_store.FORMAT_VERSION
    assert set(document["files"]) == {"codebook.npy", "estimator.skops"}
    assert model_store.read_meta(directory) == {"model": "rf"}
    loaded = model_store.load_estimator(directory, "estimator")
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))
    np.testing.assert_array_equal(model_store.load_array(directory, "codebook"), np.arange(12).reshape(3, 4))


def test_tampered_file_is_refused(tmp_path):
    directory = _save(tmp_path)
    blob = bytearray((directory / "codebook.npy").read_bytes())
    blob[-1] ^= 0xFF
    (directory / "codebook.npy").write_bytes(bytes(blob))
    with pytest.raises(ModelRefused, match="codebook.npy.*sha256"):
        model_store.read_meta(directory)


def test_missing_and_extra_files_are_refused(tmp_path):
    directory = _save(tmp_path)
    (directory / "extra.skops").write_bytes(b"planted")
    with pytest.raises(ModelRefused, match="not listed"):
        model_store.read_meta(directory)
    (directory / "extra.skops").unlink()
    (directory / "codebook.npy").unlink()
    with pytest.raises(ModelRefused, match="codebook.npy.*missing"):
        model_store.read_meta(directory)


def test_other_format_version_is_refused(tmp_path):
    directory = _save(tmp_path)
    document = json.loads((directory / "model.json").read_text())
    document["format_version"] = model_store.FORMAT_VERSION + 1
    (directory / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelRefused, match="format version"):
        model_store.read_meta(directory)
    (directory / "model.json").write_text("{not json")
    with pytest.raises(ModelRefused, match="not valid JSON"):
        model_store.read_meta(directory)


def test_untrusted_type_is_refused_even_with_valid_hashes(tmp_path):
    directory = model_store.save_model_dir(tmp_path / "m", estimators={"estimator": NotOnTheAllowlist()}, meta={})
    model_store.read_meta(directory)  # hashes are fine: the content is what is refused
    with pytest.raises(ModelRefused, match="NotOnTheAllowlist"):
        model_store.load_estimator(directory, "estimator")
    with pytest.raises(TypeError, match="not allowed"):
        model_store.load_estimator(directory, "estimator", trusted=True)


def test_object_arrays_are_not_stored(tmp_path):
    with pytest.raises(ValueError, match="object"):
        model_store.save_model_dir(tmp_path / "m", arrays={"bad": np.array([{"a": 1}], dtype=object)}, meta={})


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelRefused, match="model.json is missing"):
        model_store.read_meta(tmp_path)
