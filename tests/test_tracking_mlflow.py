"""consumer.tracking: train and predict runs in a local sqlite MLflow store, registry without pickle."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from consumer.learn import model_store
from consumer.tracking import (DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, ENV_VAR, MlflowTracker, TrackingError,
                               add_cli_arguments, resolve_uri, tracker_from_args)
from consumer.tracking.mlflow_tracker import check_uri, flatten_params

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

# The sqlite store's tables and the registered run take seconds: one worker sets them up once.
pytestmark = pytest.mark.one_worker

MODEL = "chestct-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One sqlite store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def saved_model(directory, estimator) -> object:
    model_store.save_model_dir(directory, estimators={"estimator": estimator},
                               meta={"engine": "sklearn", "classes": ["a", "b"]})
    return directory


@pytest.fixture(scope="module")
def registered(store, data, tmp_path_factory):
    """A finished train run with params, stream, metric history, artifacts and version 1."""
    X, y = data
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    work = tmp_path_factory.mktemp("work")
    model_dir = saved_model(work / "model", pipe)
    (work / "report.json").write_text('{"accuracy": 0.9}\n')
    (work / "plots").mkdir()
    (work / "plots" / "confusion.png").write_bytes(b"\x89PNG fake bytes")
    tracker = MlflowTracker(store)
    with tracker:
        run_id = tracker.start_train_run({"model": "svm", "features": {"hog": True, "lbp_radius": 2},
                                          "classes": ["a", "b"]}, tags={"chestct.data": "synthetic"})
        tracker.log_stream("ab" * 32, {"image_size": [128, 128], "window": "lung"})
        for step, accuracy in ((8, 0.5), (16, 0.625), (24, 0.75), (32, 0.8125)):
            tracker.log_batch({"prequential_accuracy": accuracy, "batch_images": 8}, step=step)
        tracker.log_final({"valid_accuracy": 0.9})
        tracker.log_artifacts([work / "report.json", work / "plots"])
        version = tracker.register_model_version(model_dir, MODEL, estimator=pipe)
    return {"run_id": run_id, "version": version, "pipe": pipe, "model_dir": model_dir}


def test_a_train_run_keeps_params_stream_metric_history_and_artifacts(store, registered):
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(registered["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == DEFAULT_EXPERIMENT
    params = run.data.params
    assert params["model"] == "svm" and params["features.hog"] == "True" and params["features.lbp_radius"] == "2"
    assert params["classes"] == '["a", "b"]'
    assert params["train_stream.id"] == "ab" * 32 and params["train_stream.preprocessing.window"] == "lung"
    assert run.data.tags["chestct.kind"] == "train" and run.data.tags["chestct.data"] == "synthetic"
    history = client.get_metric_history(registered["run_id"], "prequential_accuracy")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (8, 0.5), (16, 0.625), (24, 0.75), (32, 0.8125)]
    final = client.get_metric_history(registered["run_id"], "valid_accuracy")
    assert [(m.step, m.value) for m in final] == [(32, 0.9)]  # lined up with the last batch
    top = {a.path for a in client.list_artifacts(registered["run_id"])}
    assert {"report.json", "plots", "streams", "chestct_model", "sklearn_model"} <= top
    assert [a.path for a in client.list_artifacts(registered["run_id"], "plots")] == ["plots/confusion.png"]
    # artifacts live beside the database, not in the working directory
    db = check_uri(store)
    assert (db.parent / "mlflow-artifacts").is_dir() and not os.path.exists("mlruns")


def test_the_registered_version_loads_with_mlflow_and_with_chestct_and_predicts(store, registered, data,
                                                                                 tmp_path, monkeypatch):
    X, _ = data
    expected = registered["pipe"].predict(X)
    assert registered["version"] == "1"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version(MODEL, "1")
    assert version.run_id == registered["run_id"] and version.source.endswith("/sklearn_model")
    assert version.tags["chestct.model_json_sha256"] == model_store.sha256_file(registered["model_dir"] / "model.json")
    # MLflow's own loader: the sklearn flavour in skops format (MLmodel says so)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path / "mlmodel"))
    flavour = mlflow.models.Model.load(local).flavors["sklearn"]
    assert flavour["serialization_format"] == "skops" and flavour["pickled_model"].endswith(".skops")
    assert not any(name.endswith((".pkl", ".pickle")) for name in os.listdir(local))
    np.testing.assert_array_equal(mlflow.sklearn.load_model(f"models:/{MODEL}/1").predict(X), expected)
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(f"models:/{MODEL}/1").predict(X), expected)
    # chestct's loader: the model directory comes back byte for byte and passes its hash checks
    fetched = MlflowTracker(store).download_model_dir(MODEL, 1, tmp_path / "fetched")
    assert model_store.read_meta(fetched) == {"engine": "sklearn", "classes": ["a", "b"]}
    np.testing.assert_array_equal(model_store.load_estimator(fetched, "estimator").predict(X), expected)


def test_a_predict_run_is_linked_to_its_model_version(store, registered):
    tracker = MlflowTracker(store)
    assert tracker.find_model_version(registered["model_dir"]) == (MODEL, "1")  # from model.json's hash
    run_id = tracker.start_predict_run(MODEL, 1, params={"split": "test"})
    tracker.log_stream("cd" * 32, {"window": "bone"}, role="predict")
    tracker.log_final({"accuracy": 0.75, "images": 200})
    tracker.end()
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    tags = run.data.tags
    assert tags["chestct.kind"] == "predict" and tags["chestct.model_name"] == MODEL
    assert tags["chestct.model_version"] == "1" and tags["chestct.model_run_id"] == registered["run_id"]
    assert run.data.params["split"] == "test" and run.data.params["predict_stream.preprocessing.window"] == "bone"
    assert run.data.metrics == {"accuracy": 0.75, "images": 200.0}
    with pytest.raises(TrackingError, match="has no version 99"):
        tracker.start_predict_run(MODEL, 99)
    with pytest.raises(TrackingError, match="has no version"):
        tracker.start_predict_run("no-such-model", 1)


def test_versions_count_up_and_untrusted_skops_types_must_be_named(store, data, tmp_path):
    X, y = data
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    model_dir = saved_model(tmp_path / "forest", forest)
    tracker = MlflowTracker(store)
    tracker.start_train_run({"model": "rf"})
    with pytest.raises(TrackingError, match="sklearn model"):  # skops refuses sklearn.tree._tree.Tree
        tracker.register_model_version(model_dir, "chestct-forest", estimator=forest)
    tracker.end("FAILED")
    tracker.start_train_run({"model": "rf"})
    first = tracker.register_model_version(model_dir, "chestct-forest", estimator=forest,
                                           skops_trusted_types=sorted(model_store.TRUSTED_TYPES))
    # without an estimator (an mllib model) the chestct directory itself is the version's source;
    # without a name the tracker's model_name is used
    tracker.model_name = "chestct-forest"
    second = tracker.register_model_version(model_dir)
    tracker.end()
    assert (first, second) == ("1", "2")
    assert tracker.find_model_version(model_dir) == ("chestct-forest", "2")  # the newest of both
    other = saved_model(tmp_path / "never-registered", forest)
    (other / "model.json").write_text((other / "model.json").read_text().replace('"sklearn"', '"other"'))
    assert tracker.find_model_version(other) is None
    source = MlflowClient(tracking_uri=store, registry_uri=store).get_model_version("chestct-forest", "2").source
    assert source.endswith("/chestct_model")
    fetched = tracker.download_model_dir("chestct-forest", 2, tmp_path / "back")
    np.testing.assert_array_equal(model_store.load_estimator(fetched, "estimator").predict(X), forest.predict(X))


def test_misuse_gives_clear_errors(store, tmp_path):
    tracker = MlflowTracker(store)
    with pytest.raises(TrackingError, match="no MLflow run is open"):
        tracker.log_batch({"accuracy": 1.0}, step=1)
    with pytest.raises(TrackingError, match="no MLflow run is open"):
        tracker.log_artifacts([tmp_path])
    with pytest.raises(ValueError), tracker:
        tracker.start_train_run({})
        run_id = tracker.run_id
        with pytest.raises(TrackingError, match="still open"):
            tracker.start_train_run({})
        with pytest.raises(TrackingError, match="real number"):
            tracker.log_batch({"accuracy": "high"}, step=1)
        with pytest.raises(TrackingError, match="step"):
            tracker.log_batch({"accuracy": 1.0}, step=-1)
        with pytest.raises(TrackingError, match="does not exist"):
            tracker.log_artifacts([tmp_path / "missing.png"])
        with pytest.raises(TrackingError, match="not a chestct model directory"):
            tracker.register_model_version(tmp_path, "x")
        raise ValueError("the training failed")
    assert tracker.run_id is None
    assert MlflowClient(tracking_uri=store).get_run(run_id).info.status == "FAILED"


@pytest.mark.parametrize("uri, message", [
    ("", "empty"),
    ("mysql://user@127.0.0.1/db", "unsupported"),
    ("mlflow.db", "unsupported"),
    ("sqlite://", "names a file"),
    ("sqlite:///{tmp}/missing/mlflow.db", "does not exist"),
    ("sqlite:///{tmp}", "names a folder"),
    ("sqlite:///{tmp}/garbage.db", "cannot open MLflow tracking store"),
])
def test_bad_tracking_uris_are_refused_with_a_reason(uri, message, tmp_path):
    (tmp_path / "garbage.db").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(TrackingError, match=message):
        MlflowTracker(uri.format(tmp=tmp_path))


def test_tracking_is_off_by_default_and_the_environment_or_flag_turns_it_on(store):
    assert resolve_uri(None, {}) is None and resolve_uri("  ", {ENV_VAR: ""}) is None
    assert resolve_uri(None, {ENV_VAR: store}) == store
    assert resolve_uri("sqlite:///other.db", {ENV_VAR: store}) == "sqlite:///other.db"  # the flag wins
    ap = argparse.ArgumentParser()
    add_cli_arguments(ap)
    args = ap.parse_args([])
    assert (args.mlflow, args.mlflow_experiment, args.mlflow_model) == (None, DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME)
    if os.environ.get(ENV_VAR) is None:
        assert tracker_from_args(args) is None
    tracker = tracker_from_args(ap.parse_args(["--mlflow", store, "--mlflow-experiment", "chestct-cli",
                                               "--mlflow-model", "chestct-cli-model"]))
    assert tracker.experiment == "chestct-cli" and tracker.uri == store and tracker.model_name == "chestct-cli-model"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"  # set before mlflow was imported


def test_params_are_flattened_to_strings():
    assert flatten_params({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}, "f": 0.5, "g": True}) == {
        "a": "1", "b.c": "[1, 2]", "b.d.e": "None", "f": "0.5", "g": "True"}


def test_chestct_tracking_imports_without_mlflow(tmp_path, monkeypatch):
    code = ("import sys\n"
            "import consumer.tracking as t\n"
            "assert 'mlflow' not in sys.modules, 'imported mlflow eagerly'\n"
            "sys.modules['mlflow'] = None\n"
            "try:\n"
            f"    t.MlflowTracker('sqlite:///{tmp_path}/mlflow.db')\n"
            "except t.TrackingError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "pip install 'chestct[mlflow]'" in out.stdout
    assert not (tmp_path / "mlflow.db").exists()
