"""Training: batch vs incremental equivalence, save/load safety, stream checks, Spark ML."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from consumer import model_store, sift_bow
from consumer.features import FeatureConfig, n_features
from consumer.model_store import ModelRefused
from consumer.training import IncrementalTrainer, ModelMismatch, TrainedModel, fit

CLASSES = ["a", "b", "c", "d"]
SHAPE = (32, 32)
CONFIG = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,))
WIDTH = n_features(CONFIG, SHAPE)


class Planted:
    """Stands for a malicious object: its type is on no allowlist."""


def _data(n, seed):
    """Four well separated Gaussian clusters in WIDTH dimensions."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(42).normal(0, 4, size=(len(CLASSES), WIDTH))
    labels = rng.integers(0, len(CLASSES), n)
    return (centers[labels] + rng.normal(0, 0.5, size=(n, WIDTH))).astype(np.float32), labels


def _table(features, labels, sift=None):
    return pd.DataFrame({"image_id": [f"img{i:04d}" for i in range(len(labels))], "label": labels,
                         "seq": np.arange(len(labels)) // 20, "features": list(features),
                         "sift": sift if sift is not None else [None] * len(labels)})


def _batches(features, labels, n_batches):
    return list(zip(np.array_split(features, n_batches), np.array_split(labels, n_batches)))


def _fit(model, features, labels, **kw):
    return fit(_table(features, labels), config=CONFIG, model=model, classes=CLASSES, image_shape=SHAPE,
               color_mode="grayscale", seed=7, **kw)


@pytest.mark.parametrize("model", ["rf", "svm"])
def test_refit_on_accumulated_batches_equals_one_fit_on_all(model):
    X, y = _data(200, 0)
    X_new, _ = _data(300, 1)
    trainer = IncrementalTrainer(config=CONFIG, model=model, classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7, refit_every=2)
    updates = [trainer.partial_fit(bx, by) for bx, by in _batches(X, y, 5)]
    assert updates == [False, True, False, True, False]
    incremental = trainer.finish()
    assert incremental.meta["n_train_images"] == 200
    once = _fit(model, X, y)
    np.testing.assert_array_equal(incremental.predict(X_new), once.predict(X_new))
    if model == "rf":  # the same forest, not just the same labels
        np.testing.assert_array_equal(incremental.estimator.predict_proba(X_new), once.estimator.predict_proba(X_new))


def test_sgd_partial_fit_over_a_stream_predicts_like_one_fit_on_all():
    X, y = _data(400, 0)
    X_new, y_new = _data(300, 1)
    trainer = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7)
    assert all(trainer.partial_fit(bx, by) for bx, by in _batches(X, y, 8))
    incremental = trainer.finish()
    once = _fit("sgd", X, y)
    # The scaler updated batch by batch ends equal to one fitted on everything.
    np.testing.assert_allclose(incremental.estimator["scaler"].mean_, once.estimator["scaler"].mean_, rtol=1e-5)
    np.testing.assert_allclose(incremental.estimator["scaler"].var_, once.estimator["scaler"].var_, rtol=1e-4)
    np.testing.assert_array_equal(incremental.predict(X_new), once.predict(X_new))
    assert (incremental.predict(X_new) == y_new).mean() > 0.95


def test_save_load_round_trip_and_meta(tmp_path):
    X, y = _data(120, 0)
    model = _fit("svm", X, y)
    model.save(tmp_path / "model")
    loaded = TrainedModel.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    meta = json.loads((tmp_path / "model" / "model.json").read_text())["meta"]
    assert meta["classes"] == CLASSES and meta["image_shape"] == [32, 32, 1] and meta["color_mode"] == "grayscale"
    assert meta["n_train_images"] == 120 and meta["feature_config"] == CONFIG.to_dict()
    assert {"numpy", "scikit-learn", "skops"} <= set(meta["versions"])
    model.save(tmp_path / "model")  # overwriting a previous model directory is fine
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        model.save(tmp_path / "other")


def test_tampered_model_file_is_refused(tmp_path):
    X, y = _data(120, 0)
    _fit("rf", X, y).save(tmp_path / "model")
    path = tmp_path / "model" / "estimator.skops"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelRefused, match="estimator.skops.*sha256"):
        TrainedModel.load(tmp_path / "model")


def test_untrusted_type_is_refused(tmp_path):
    import skops.io as sio

    X, y = _data(120, 0)
    directory = _fit("svm", X, y).save(tmp_path / "model")
    sio.dump({"estimator": Planted()}, directory / "estimator.skops")
    document = json.loads((directory / "model.json").read_text())
    document["files"]["estimator.skops"] = model_store.sha256_file(directory / "estimator.skops")
    (directory / "model.json").write_text(json.dumps(document))  # an attacker fixing the hash
    with pytest.raises(ModelRefused, match="Planted"):
        TrainedModel.load(directory)


def test_model_stream_mismatch_is_refused():
    X, y = _data(80, 0)
    model = _fit("svm", X, y)
    model.check_stream({"image_shape": [32, 32, 1], "classes": CLASSES})
    with pytest.raises(ModelMismatch, match="image size.*64x64.*32x32"):
        model.check_stream({"image_shape": [64, 64, 1], "classes": CLASSES})
    with pytest.raises(ModelMismatch, match="colour mode.*rgb"):
        model.check_stream({"image_shape": [32, 32, 3], "classes": CLASSES})
    with pytest.raises(ModelMismatch, match="classes"):
        model.check_stream({"image_shape": [32, 32, 1], "classes": CLASSES[::-1]})


def test_bad_tables_are_refused():
    X, y = _data(40, 0)
    with pytest.raises(ValueError, match="values per image"):
        fit(_table(X[:, :5], y), config=CONFIG, classes=CLASSES, image_shape=SHAPE, color_mode="grayscale")
    with pytest.raises(ValueError, match="class indices"):
        _fit("svm", X, y + 4)
    with pytest.raises(ValueError, match="lacks columns"):
        fit(_table(X, y).drop(columns=["seq"]), config=CONFIG, classes=CLASSES, image_shape=SHAPE,
            color_mode="grayscale")
    with pytest.raises(ValueError, match="unknown svm parameters"):
        _fit("svm", X, y, params={"trees": 3})
    with pytest.raises(ValueError, match="color_mode"):
        fit(_table(X, y), config=CONFIG, classes=CLASSES, image_shape=SHAPE, color_mode="sepia")


def _sift_blobs(labels, seed):
    """Per-image descriptors drawn around one class-specific centre; a few images have none."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(5).random((len(CLASSES), 128), dtype=np.float32) * 100
    blobs = []
    for i, label in enumerate(labels):
        if i % 10 == 0:
            blobs.append(None)
            continue
        k = int(rng.integers(3, 12))
        blobs.append(sift_bow.to_bytes(centers[label] + rng.normal(0, 1, (k, 128)).astype(np.float32)))
    return blobs


def test_sift_codebook_is_learned_at_fit_and_saved(tmp_path):
    config = FeatureConfig(features=("lbp", "sift"), lbp_P=(8,), lbp_R=(1.0,), sift_n_words=8)
    X, y = _data(120, 0)
    sift = _sift_blobs(y, 0)
    model = fit(_table(X, y, sift), config=config, model="svm", classes=CLASSES, image_shape=SHAPE,
                color_mode="grayscale")
    assert model.codebook.shape == (8, 128)
    model.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.codebook, model.codebook)
    np.testing.assert_array_equal(loaded.predict(X, sift), model.predict(X, sift))
    with pytest.raises(ValueError, match="SIFT is on"):
        model.predict(X)


@pytest.mark.spark
@pytest.mark.slow
def test_mllib_random_forest_with_sift_from_pandas(tmp_path, spark):
    """RF on a pandas table with SIFT on: codebook at fit, mapInPandas encoding, save/load."""
    config = FeatureConfig(features=("lbp", "sift"), lbp_P=(8,), lbp_R=(1.0,), sift_n_words=8)
    X, y = _data(160, 0)
    X_new, y_new = _data(60, 1)
    sift, sift_new = _sift_blobs(y, 0), _sift_blobs(y_new, 1)
    trained = fit(_table(X, y, sift), config=config, model="rf", engine="mllib", classes=CLASSES,
                  image_shape=SHAPE, color_mode="grayscale", seed=3, spark=spark, params={"numTrees": 20})
    assert trained.codebook.shape == (8, 128)
    predicted = trained.predict(X_new, sift_new)
    assert (predicted == y_new).mean() > 0.9
    directory = trained.save(tmp_path / "mllib")
    assert (directory / "spark_model" / "metadata").is_dir()
    assert not list(directory.rglob("*.pkl")) and not list(directory.rglob("*.skops"))
    loaded = TrainedModel.load(directory)
    assert loaded.meta["engine"] == "mllib" and "pyspark" in loaded.meta["versions"]
    np.testing.assert_array_equal(loaded.predict(X_new, sift_new), predicted)


@pytest.mark.spark
@pytest.mark.slow
def test_mllib_linear_svm_on_a_spark_dataframe(spark):
    """One-vs-rest LinearSVC trained on a Spark DataFrame (as the CLI passes), applied with transform()."""
    X, y = _data(160, 0)
    X_new, y_new = _data(60, 1)

    def frame(features, labels):
        return spark.createDataFrame(
            [(f"img{i:04d}", int(label), 0, [float(v) for v in row], None)
             for i, (row, label) in enumerate(zip(features, labels))],
            "image_id string, label long, seq long, features array<float>, sift binary")

    trained = fit(frame(X, y), config=CONFIG, model="svm", engine="mllib", classes=CLASSES, image_shape=SHAPE,
                  color_mode="grayscale", seed=3, spark=spark, params={"maxIter": 50})
    assert trained.meta["n_train_images"] == 160
    rows = trained.transform(frame(X_new, y_new)).select("image_id", "prediction").toPandas()
    predicted = rows.sort_values("image_id")["prediction"].to_numpy().astype(int)
    assert (predicted == y_new).mean() > 0.9
    np.testing.assert_array_equal(trained.predict(X_new), predicted)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    session = existing or (SparkSession.builder.master("local[2]").appName("chestct-test-training")
                           .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
                           .getOrCreate())
    yield session
    if existing is None:  # stop only the session this module started
        session.stop()
