"""``chestct train --mlflow sqlite:///...`` then ``chestct predict``: everything is in MLflow."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlflow")

from fake_producer import FakeProducer, FakeStream, Processes, consumer_args  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

STREAM = FakeStream(total_images=40, batch_size=8, image_shape=(32, 32, 1))  # 5 batches
FEATURES = ["--features", "hog", "--feature-option", "hog.pixels_per_cell=8",
            "--feature-option", "hog.cells_per_block=2", "--backend", "skimage"]


def test_train_and_predict_are_tracked_and_the_model_is_registered(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = Processes()
    model = tmp_path / "model"
    try:
        with FakeProducer(stream=STREAM) as fp:
            common = ["--port", str(fp.port), "--master", "local[2]", "--mlflow", store, "--mlflow-model", "ct",
                      "--max-batches-per-trigger", "2", "--work-dir", str(tmp_path / "work")]
            for args, log in ((["train", "--model", "sgd", "--save-path", str(model), *FEATURES], "train.log"),
                              (["predict", "--save-path", str(model), "--backend", "skimage"], "predict.log")):
                proc = procs.start(consumer_args(*args, *common), tmp_path / log)
                assert proc.wait(300) == 0, (tmp_path / log).read_text()[-3000:]
    finally:
        procs.stop_all()

    client = MlflowClient(tracking_uri=store, registry_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("chestct").experiment_id])
    train = next(r for r in runs if r.data.params.get("model") == "sgd")
    predict = next(r for r in runs if r.info.run_id != train.info.run_id)
    assert train.data.params["engine"] == "sklearn" and any(k.startswith("features") for k in train.data.params)
    speed = client.get_metric_history(train.info.run_id, "images_per_s")
    assert [m.step for m in speed] == [8, 16, 24, 32, 40]  # one point per producer batch, step = images seen
    assert len(client.get_metric_history(train.info.run_id, "macro_f1")) >= 4
    assert any(a.path.endswith("model.json") or a.is_dir for a in client.list_artifacts(train.info.run_id))
    (version,) = client.search_model_versions("name='ct'")
    assert predict.data.tags["chestct.model_version"] == str(version.version)
    assert predict.data.metrics["n_images"] == STREAM.total_images
    assert {a.path for a in client.list_artifacts(predict.info.run_id)} >= {"report.json"}
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    loaded = mlflow.sklearn.load_model(f"models:/ct/{version.version}")
    width = loaded.named_steps["scaler"].mean_.shape[0]
    assert loaded.predict(np.zeros((2, width), np.float32)).shape == (2,)
