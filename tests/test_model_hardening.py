"""A model that passes the skops allowlist but carries crafted arrays is refused, never run;
with a key, an unsigned or wrongly signed model is refused."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from consumer.features import FeatureConfig, n_features
from consumer.learn import model_store, signing
from consumer.learn.fit import fit
from consumer.learn.model import TrainedModel

CLASSES = ["a", "b", "c", "d"]
CONFIG = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
WIDTH = n_features(CONFIG, (32, 32))
KEY = b"0123456789abcdef0123456789abcdef"


def _fit(model: str) -> TrainedModel:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(40)], "label": np.arange(40) % 4, "seq": 0,
                          "features": list(rng.random((40, WIDTH), dtype=np.float32))})
    # A small forest: the checks walk every tree alike, and 500 trees cost seconds to save and load.
    params = {"n_estimators": 10} if model == "rf" else None
    return fit(table, config=CONFIG, model=model, classes=CLASSES, image_shape=[32, 32, 1], color_mode="grayscale",
               params=params)


def _rehash(directory) -> None:
    """What an attacker with write access to the folder does: recompute model.json's hashes."""
    path = directory / model_store.META_FILE
    document = json.loads(path.read_text())
    document["files"] = {rel: model_store.sha256_file(directory / rel) for rel in document["files"]}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _craft_tree(model: TrainedModel, field: str, value: int) -> None:
    tree = model.estimator.named_steps["classifier"].estimators_[0].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    inner = np.flatnonzero(nodes["left_child"] != -1)[0]
    nodes[field][inner] = value
    state["nodes"] = nodes
    tree.__setstate__(state)


def _save_crafted_forest(directory, field: str, value: int) -> None:
    """A forest whose first tree's ``field`` is ``value``, saved with valid hashes."""
    import skops.io as sio

    model = _fit("rf")
    model.save(directory)
    _craft_tree(model, field, value)
    sio.dump(model.estimator, directory / "estimator.skops")
    _rehash(directory)


@pytest.mark.parametrize("field, value, words", [
    ("feature", 50_000_000, "features outside"),
    ("left_child", 2_000_000_000, "children outside"),
    ("right_child", 0, "children outside|before its parent"),
])
def test_a_crafted_tree_is_refused_with_a_clear_error(tmp_path, field, value, words):
    _save_crafted_forest(tmp_path / "m", field, value)
    model_store.read_meta(tmp_path / "m")  # the hashes pass: only the array check stands
    with pytest.raises(model_store.ModelRefused, match=words):
        TrainedModel.load(tmp_path / "m")


def test_a_crafted_tree_fails_a_fresh_interpreter_with_a_clear_error_not_a_signal(tmp_path):
    _save_crafted_forest(tmp_path / "m", "feature", 50_000_000)
    code = ("from consumer.learn.model import TrainedModel\n"
            f"TrainedModel.load({str(tmp_path / 'm')!r})")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and "ModelRefused" in run.stderr and "features outside" in run.stderr


def test_a_crafted_svm_is_refused(tmp_path):
    import skops.io as sio

    model = _fit("svm")
    model.save(tmp_path / "m")
    svc = model.estimator.named_steps["classifier"]
    svc._n_support = svc._n_support * 1000
    sio.dump(model.estimator, tmp_path / "m" / "estimator.skops")
    _rehash(tmp_path / "m")
    with pytest.raises(model_store.ModelRefused, match="support counts"):
        TrainedModel.load(tmp_path / "m")


def test_a_scaler_of_another_width_is_refused(tmp_path):
    import skops.io as sio

    model = _fit("sgd")
    model.save(tmp_path / "m")
    scaler = model.estimator.named_steps["scaler"]
    scaler.mean_ = np.zeros(3)
    sio.dump(model.estimator, tmp_path / "m" / "estimator.skops")
    _rehash(tmp_path / "m")
    with pytest.raises(model_store.ModelRefused, match="scaler"):
        TrainedModel.load(tmp_path / "m")


def test_every_trained_model_passes_the_checks(tmp_path):
    for name in ("svm", "rf", "sgd"):
        _fit(name).save(tmp_path / name)
        assert TrainedModel.load(tmp_path / name).meta["model"] == name


def test_with_a_key_unsigned_or_rewritten_models_are_refused(tmp_path, monkeypatch):
    model = _fit("sgd")
    model.save(tmp_path / "signed", key=KEY)
    assert TrainedModel.load(tmp_path / "signed", key=KEY).meta["model"] == "sgd"
    model.save(tmp_path / "unsigned")
    with pytest.raises(model_store.ModelRefused, match="not signed"):
        TrainedModel.load(tmp_path / "unsigned", key=KEY)
    # Rewriting model.json (even with correct file hashes) breaks the signature.
    meta_path = tmp_path / "signed" / model_store.META_FILE
    meta_path.write_text(meta_path.read_text().replace('"sgd"', '"sgd" '))
    with pytest.raises(model_store.ModelRefused, match="does not match"):
        TrainedModel.load(tmp_path / "signed", key=KEY)
    with pytest.raises(model_store.ModelRefused, match="does not match"):
        model.save(tmp_path / "other", key=b"another-key-another-key")
        TrainedModel.load(tmp_path / "other", key=KEY)
    monkeypatch.setenv(signing.KEY_ENV, "short")
    with pytest.raises(ValueError, match="at least 16"):
        signing.load_key()
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    key_file.chmod(0o644)
    with pytest.raises(ValueError, match="readable by others"):
        signing.load_key(key_file)
    key_file.chmod(0o600)
    assert signing.load_key(key_file) == KEY
