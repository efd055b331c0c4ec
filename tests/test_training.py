"""Training: batch vs incremental equivalence, save/load safety, stream checks, Spark ML."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from consumer.features import sift_bow
from consumer.learn import model_store
from consumer.features import FeatureConfig, n_features
from consumer.learn.model_store import ModelRefused
from consumer.learn.fit import fit
from consumer.learn.incremental import IncrementalTrainer
from consumer.learn.model import TrainedModel
from consumer.preflight import ModelMismatch, check_model

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
    check_model({"image_shape": [32, 32, 1], "classes": CLASSES}, model.meta)
    with pytest.raises(ModelMismatch, match="image size.*64x64.*32x32"):
        check_model({"image_shape": [64, 64, 1], "classes": CLASSES}, model.meta)
    with pytest.raises(ModelMismatch, match="colour mode.*rgb"):
        check_model({"image_shape": [32, 32, 3], "classes": CLASSES}, model.meta)
    with pytest.raises(ModelMismatch, match="classes"):
        check_model({"image_shape": [32, 32, 1], "classes": CLASSES[::-1]}, model.meta)


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
                  image_shape=SHAPE, color_mode="grayscale", seed=3, spark=spark, params={"numTrees": 5})
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
                  color_mode="grayscale", seed=3, spark=spark, params={"maxIter": 4})
    assert trained.meta["n_train_images"] == 160
    rows = trained.transform(frame(X_new, y_new)).select("image_id", "prediction").toPandas()
    predicted = rows.sort_values("image_id")["prediction"].to_numpy().astype(int)
    assert (predicted == y_new).mean() > 0.9
    np.testing.assert_array_equal(trained.predict(X_new), predicted)


# -- prequential (test-then-train) running metrics ---------------------------------------
def _sklearn_scores(y_true, y_pred):
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=range(len(CLASSES)), average="macro",
                                                 zero_division=0)
    return accuracy_score(y_true, y_pred), p, r, f


def _check_entries_against_sklearn(entries, batches, predictions):
    """Each entry's running numbers equal sklearn's on the batches predicted so far."""
    y_true, y_pred = [], []
    for entry, (_, by), predicted in zip(entries, batches, predictions):
        if predicted is not None:
            y_true.extend(by)
            y_pred.extend(predicted)
        assert entry["n_evaluated"] == len(y_true)
        if not y_true:
            assert entry["has_model"] is False and "accuracy" not in entry
            continue
        acc, p, r, f = _sklearn_scores(y_true, y_pred)
        assert entry["accuracy"] == pytest.approx(acc)
        assert (entry["macro_precision"], entry["macro_recall"], entry["macro_f1"]) == pytest.approx((p, r, f))


@pytest.mark.parametrize("model", ["rf", "svm"])
def test_prequential_refit_metrics_equal_sklearn_on_predict_then_train(model):
    from consumer.learn.prequential import PrequentialTrainer

    X, y = _data(160, 3)
    y[:40] = 0  # batches 0 and 1 hold one class: no refit before batch 2 brings more
    batches = _batches(X, y, 8)  # 20 images each
    params = {"n_estimators": 20} if model == "rf" else None
    trainer = IncrementalTrainer(config=CONFIG, model=model, classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7, refit_every=2, params=params)
    prequential = PrequentialTrainer(trainer)
    entries = [prequential.step(bx, by, seq=10 + i) for i, (bx, by) in enumerate(batches)]

    # By hand: a model fitted on everything seen, refitted every 2 batches once 2 classes were seen.
    current, pending, predictions = None, 0, []
    for i, (bx, by) in enumerate(batches):
        predictions.append(None if current is None else current.predict(bx))
        pending += 1
        seen_x, seen_y = np.concatenate([b[0] for b in batches[:i + 1]]), np.concatenate([b[1] for b in batches[:i + 1]])
        if pending >= 2 and len(np.unique(seen_y)) >= 2:
            current, pending = _fit(model, seen_x, seen_y, params=params), 0
    assert [e["seq"] for e in entries] == list(range(10, 18))
    assert [e["has_model"] for e in entries] == [False] * 3 + [True] * 5  # first refit: after batch 2
    assert [e["n_images"] for e in entries] == [20 * (i + 1) for i in range(8)]
    _check_entries_against_sklearn(entries, batches, predictions)
    final = prequential.final()
    assert final["n_images"] == 100 and final["accuracy"] == pytest.approx(entries[-1]["accuracy"])


def test_prequential_sgd_metrics_equal_sklearn_on_predict_then_train():
    from sklearn.preprocessing import StandardScaler

    from consumer.learn.estimators import build_classifier
    from consumer.learn.prequential import PrequentialTrainer

    X, y = _data(240, 4)
    batches = _batches(X, y, 6)
    trainer = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7)
    prequential = PrequentialTrainer(trainer)
    entries = [prequential.step(bx, by) for bx, by in batches]

    scaler, classifier, predictions = StandardScaler(), build_classifier("sgd", None, 7), []
    for i, (bx, by) in enumerate(batches):
        predictions.append(classifier.predict(scaler.transform(bx)) if i else None)
        scaler.partial_fit(bx)
        classifier.partial_fit(scaler.transform(bx), by, classes=np.arange(len(CLASSES)))
    assert [e["has_model"] for e in entries] == [False] + [True] * 5
    _check_entries_against_sklearn(entries, batches, predictions)
    assert entries[-1]["accuracy"] > 0.8  # well separated clusters: learned from the first batches on


def test_prequential_process_groups_rows_by_seq_and_lines_say_no_model_yet():
    from consumer.learn.prequential import PrequentialTrainer
    from consumer.evaluate.report import train_batch_line

    X, y = _data(60, 5)
    frame = _table(X, y)  # seq = row // 20: producer batches 0, 1, 2
    now = [0.0]
    trainer = IncrementalTrainer(config=CONFIG, model="svm", classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7, refit_every=1)
    prequential = PrequentialTrainer(trainer, clock=lambda: now[0])
    now[0] = 3.0
    entries = prequential.process(frame.iloc[::-1])  # arrival order does not matter
    assert [e["seq"] for e in entries] == [0, 1, 2] and [e["batch_size"] for e in entries] == [20, 20, 20]
    lines = [train_batch_line(e) for e in entries]
    assert "no model yet" in lines[0] and "acc=" not in lines[0]
    expected = (y[20:40] == _fit("svm", X[:20], y[:20]).predict(X[20:40])).mean()
    assert entries[1]["accuracy"] == pytest.approx(expected)
    assert f"acc={expected:.3f}" in lines[1] and "F1=" in lines[2] and "(on 40 unseen)" in lines[2]
    assert entries[2]["images_per_s"] == pytest.approx(60 / 3)  # 60 images in 3 s
    assert "images=    60" in lines[2] and "20.0 img/s" in lines[2]


def _refits(model="svm", n_batches=8, **kw):
    X, y = _data(10 * n_batches, 3)
    trainer = IncrementalTrainer(config=CONFIG, model=model, classes=CLASSES, image_shape=SHAPE,
                                 color_mode="grayscale", seed=7, **kw)
    return [trainer.partial_fit(bx, by) for bx, by in _batches(X, y, n_batches)], trainer


def test_refits_wait_until_the_new_images_are_a_share_of_the_fitted_ones():
    # Batches of 10 images; the model learned from 10, 20, 40, 80 images in turn.
    updates, trainer = _refits(refit_every=1, refit_growth=1.0)
    assert updates == [True, True, False, True, False, False, False, True]
    assert trainer.model.meta["n_train_images"] == 80
    # 0: the batch count alone decides, as before the growth rule.
    assert _refits(refit_every=2, refit_growth=0)[0] == [False, True] * 4


def test_a_full_window_refits_every_growth_share_of_it():
    # Window 40 and growth 0.5: once full, a refit every 20 new images (2 batches).
    updates, trainer = _refits(n_batches=10, refit_every=1, refit_growth=0.5, window=40)
    assert updates == [True, True, True, False, True, False, True, False, True, False]
    assert trainer.model.meta["n_train_images"] == 40


@pytest.mark.parametrize("growth", [-0.1, 10.5, float("nan")])
def test_refit_growth_out_of_range_is_refused(growth):
    with pytest.raises(ValueError, match="refit_growth must be from 0 to 10"):
        _refits(refit_growth=growth)
