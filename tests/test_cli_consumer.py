"""The chestct CLI: argument handling in-process; train/predict/failures as subprocesses.

The subprocess runs talk to the fake producer (a thread of this test process) and are
always stopped with their whole process group. The sgd train and predict runs are also
tracked in MLflow and checked there; a failed run must leave nothing of the consumer
(driver, JVM, Python workers) behind. Ctrl-C: tests/test_console.py (train),
tests/test_continuous.py (predict on an endless stream).
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from consumer.learn import versions

from consumer import cli, commands
from consumer.features import FeatureConfig
from fake_producer import FakeProducer, FakeStream, Processes, consumer_args, group_gone, process_env

STREAM = FakeStream(total_images=40, batch_size=8, image_shape=(32, 32, 1))  # 5 batches
FEATURES = ["--features", "hog,lbp", "--feature-option", "hog.pixels_per_cell=8",
            "--feature-option", "hog.cells_per_block=2", "--feature-option", "lbp.P=8",
            "--feature-option", "lbp.R=1", "--feature-option", "lbp.grid=1", "--backend", "skimage"]


def _save_random_sgd(path: Path, side: int, n_images: int, seed: int) -> None:
    """Save an sgd model on random LBP-sized features for ``side`` x ``side`` grey images."""
    import numpy as np
    import pandas as pd

    from consumer.features import n_features
    from consumer.learn.fit import fit

    config = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
    width = n_features(config, (side, side))
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"image_id": [f"i{i}" for i in range(n_images)],
                          "label": [i % 4 for i in range(n_images)], "seq": 0,
                          "features": list(rng.random((n_images, width), dtype=np.float32))})
    fit(table, config=config, model="sgd", classes=STREAM.classes, image_shape=[side, side, 1],
        color_mode="grayscale").save(path)


# ------------------------------------------------------------------ arguments


def test_original_mode_flags_map_to_subcommands():
    args = cli.build_parser().parse_args(cli.normalize_argv(
        ["--mode", "train", "--model", "rf", "--save_path", "m"]))
    assert (args.command, args.model, args.save_path) == ("train", "rf", Path("m"))
    args = cli.build_parser().parse_args(cli.normalize_argv(["--save_path", "m", "--mode=predict"]))
    assert (args.command, args.save_path) == ("predict", Path("m"))


def test_defaults_are_local_and_documented():
    args = cli.build_parser().parse_args(["train", "--save-path", "m"])
    assert args.master == "local[*]" and args.host == "127.0.0.1" and args.port == 6100
    assert args.backend == "rust" and args.on_bad_batch == "fail"
    assert commands.feature_config(args) == FeatureConfig()
    assert commands.source_options(args, 2)["onBadBatch"] == "fail"


def test_feature_options_parse_and_merge_over_a_default():
    args = cli.build_parser().parse_args(["ingest", "--features", "hog,sift",
                                          "--feature-option", "hog.orientations=12"])
    config = commands.feature_config(args)
    assert config.features == ("hog", "sift") and config.hog_orientations == 12
    base = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,))
    args = cli.build_parser().parse_args(["predict", "--save-path", "m",
                                          "--feature-option", "lbp.method=default"])
    merged = commands.feature_config(args, default=base)
    assert merged.features == ("lbp",) and merged.lbp_P == (8,) and merged.lbp_method == "default"


@pytest.mark.parametrize("argv, word", [
    (["ingest", "--feature-option", "orientations=3"], "FAMILY.PARAM"),
    (["ingest", "--features", "hog,colour"], "colour"),
])
def test_bad_feature_options_are_named(argv, word):
    args = cli.build_parser().parse_args(argv)
    with pytest.raises(ValueError, match=word):
        commands.feature_config(args)


@pytest.mark.parametrize("argv", [["train"], ["train", "--save-path", "m", "--model", "knn"],
                                  ["ingest", "--port", "x"], ["ingest", "--max-batches-per-trigger", "0"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage: chestct" in capsys.readouterr().err


def test_no_producer_fails_fast_with_a_clear_message(port, capsys):
    code = cli.main(["ingest", "--port", str(port), "--connect-timeout", "1", "--backend", "skimage",
                     "--no-progress"])
    assert code == 1
    assert f"no producer at 127.0.0.1:{port}" in capsys.readouterr().err


# ------------------------------------------------------------------ whole runs


def _run(procs: Processes, args: list[str], log: Path, timeout: float = 300) -> tuple[int, str]:
    proc = procs.start(args, log, env=process_env())
    try:
        code = proc.wait(timeout)
    finally:
        procs.stop(proc)
    return code, log.read_text()


@pytest.mark.spark
@pytest.mark.slow
def test_train_sgd_then_predict_writes_report_and_plots_and_tracks_both_in_mlflow(tmp_path, monkeypatch):
    procs = Processes()
    work = tmp_path / "work"
    model = tmp_path / "model"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = ["--mlflow", store, "--mlflow-model", "ct"] if HAVE_MLFLOW else []
    try:
        with FakeProducer(stream=STREAM) as fp:
            code, out = _run(procs, consumer_args(
                "train", "--model", "sgd", "--save-path", str(model), "--port", str(fp.port),
                "--work-dir", str(work), "--master", "local[2]", "--max-batches-per-trigger", "2",
                *tracked, *FEATURES), tmp_path / "train.log")
            assert code == 0, out[-3000:]
            assert "micro-batch 0" in out
            lines = _train_lines(out)
            assert [seq for seq, _ in lines] == list(range(STREAM.batches_per_epoch))
            assert "no model yet" in lines[0][1]  # nothing to predict the first batch with
            assert all(re.search(r"acc=[\d.]+ P=[\d.]+ R=[\d.]+ F1=[\d.]+ \(on \d+ unseen\)", line)
                       for _, line in lines[1:])
            assert "training (test-then-train) on 32 images: acc=" in out
            meta = json.loads((versions.resolve(model) / "model.json").read_text())["meta"]
            assert meta["model"] == "sgd" and meta["n_train_images"] == STREAM.total_images

            report, plots = tmp_path / "out" / "report.json", tmp_path / "out" / "plots"
            legacy = [sys.executable, "-m", "consumer", "--mode", "predict", "--no-progress"]
            code, out = _run(procs, legacy + [
                "--save_path", str(model), "--port", str(fp.port),
                "--work-dir", str(work), "--master", "local[2]", "--backend", "skimage",
                "--report", str(report), "--plots-dir", str(plots), *tracked], tmp_path / "predict.log")
            assert code == 0, out[-3000:]
    finally:
        procs.stop_all()
    result = json.loads(report.read_text())
    assert result["n_images"] == STREAM.total_images
    assert [b["seq"] for b in result["batches"]] == list(range(STREAM.batches_per_epoch))
    assert result["batches"][-1]["n_images"] == STREAM.total_images
    assert result["n_skipped_batches"] == 0 and result["model"]["model"] == "sgd"
    assert sum(map(sum, result["confusion_matrix"])) == STREAM.total_images
    assert out.count("batch seq=") == STREAM.batches_per_epoch
    for png in ("confusion_matrix.png", "accuracy_over_batches.png"):
        assert (plots / png).read_bytes()[:4] == b"\x89PNG"
    assert len(list(work.glob("streams/*/*/table"))) == 1
    if HAVE_MLFLOW:
        _check_tracked(store, monkeypatch)


HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None


def _check_tracked(store: str, monkeypatch) -> None:
    """The train and predict runs above are in MLflow, and the model is registered and loads."""
    import numpy as np
    import mlflow
    from mlflow.tracking import MlflowClient

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
    # Through the environment, not mlflow.set_*_uri: those are process-wide and would point
    # later tests on this worker at this store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    loaded = mlflow.sklearn.load_model(f"models:/ct/{version.version}")
    width = loaded.named_steps["scaler"].mean_.shape[0]
    assert loaded.predict(np.zeros((2, width), np.float32)).shape == (2,)


def _train_lines(out: str) -> list[tuple[int, str]]:
    """(seq, line) of every per-producer-batch training line in a train log."""
    return [(int(m.group(1)), m.group(0)) for m in re.finditer(r"train seq=\s*(\d+) images=.*", out)]


def test_refit_every_defaults_to_a_few_batches():
    args = cli.build_parser().parse_args(["train", "--save-path", "m", "--model", "rf"])
    assert args.refit_every == cli.DEFAULT_REFIT_EVERY == 8
    args = cli.build_parser().parse_args(["train", "--save-path", "m", "--refit-every", "2"])
    assert args.refit_every == 2


def test_train_and_ingest_take_larger_micro_batches_than_predict():
    from consumer.stream import settings

    parse = cli.build_parser().parse_args
    assert settings.DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER > settings.DEFAULT_MAX_BATCHES_PER_TRIGGER
    assert parse(["train", "--save-path", "m"]).max_batches_per_trigger == settings.DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER
    assert parse(["ingest"]).max_batches_per_trigger == settings.DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER
    assert parse(["predict", "--save-path", "m"]).max_batches_per_trigger == settings.DEFAULT_MAX_BATCHES_PER_TRIGGER
    assert parse(cli.normalize_argv(["--mode", "predict", "--save_path", "m"])).max_batches_per_trigger == 8
    assert parse(["train", "--save-path", "m", "--max-batches-per-trigger", "3"]).max_batches_per_trigger == 3


def test_refit_growth_defaults_to_the_trainers_and_is_bounded(capsys):
    from consumer.learn.incremental import DEFAULT_REFIT_GROWTH, MAX_REFIT_GROWTH

    parse = cli.build_parser().parse_args
    assert parse(["train", "--save-path", "m"]).refit_growth == DEFAULT_REFIT_GROWTH
    assert parse(["train", "--save-path", "m", "--refit-growth", "0"]).refit_growth == 0
    for bad in ("-1", str(MAX_REFIT_GROWTH + 1), "inf", "x"):
        with pytest.raises(SystemExit):
            parse(["train", "--save-path", "m", "--refit-growth", bad])
        assert "--refit-growth" in capsys.readouterr().err


@pytest.mark.spark
@pytest.mark.slow
def test_a_model_for_other_images_is_refused_before_spark(tmp_path):
    _save_random_sgd(tmp_path / "model", side=64, n_images=20, seed=0)
    procs = Processes()
    try:
        with FakeProducer(stream=STREAM) as fp:  # sends 32x32
            code, out = _run(procs, consumer_args(
                "predict", "--save-path", str(tmp_path / "model"), "--port", str(fp.port),
                "--work-dir", str(tmp_path / "work"), "--backend", "skimage"), tmp_path / "p.log", 120)
    finally:
        procs.stop_all()
    assert code == 1
    assert "model does not match the stream" in out and "32x32" in out
    assert "Spark" not in out.split("model does not match")[0]


@pytest.mark.spark
@pytest.mark.slow
def test_bad_batch_fails_the_run_naming_it_and_stops_everything(tmp_path):
    procs = Processes()
    try:
        with FakeProducer(stream=STREAM, faults={3: ("crc", None)}) as fp:
            proc = procs.start(consumer_args(
                "ingest", "--port", str(fp.port), "--work-dir", str(tmp_path / "work"),
                "--master", "local[2]", *FEATURES), tmp_path / "ingest.log", env=process_env())
            code = proc.wait(300)
            gone = group_gone(proc)
    finally:
        procs.stop_all()
    out = (tmp_path / "ingest.log").read_text()
    assert code == 1, out[-3000:]
    assert "chestct ingest: error: BadBatch: batch 3 is bad" in out and "crc32" in out
    assert gone, "the consumer left processes behind"


def test_stream_predictor_counts_skips_and_reports_per_producer_batch():
    import numpy as np
    import pandas as pd

    from consumer.features import n_features
    from consumer.evaluate.predicting import StreamPredictor
    from consumer.learn.fit import fit

    config = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
    width = n_features(config, (32, 32))
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"image_id": [f"t{i}" for i in range(40)], "label": [i % 4 for i in range(40)],
                          "seq": 0, "features": list(rng.random((40, width), dtype=np.float32))})
    model = fit(train, config=config, model="sgd", classes=STREAM.classes, image_shape=[32, 32, 1],
                color_mode="grayscale")
    lines: list[str] = []
    predictor = StreamPredictor(model, emit=lines.append)
    rows = pd.DataFrame({
        "seq": [3, 3, 2, 4], "image_id": ["c", "d", "a", None], "label": [1, 2, 0, None],
        "features": [rng.random(width, dtype=np.float32) for _ in range(3)] + [None],
        "sift": [None] * 4, "error": [None, None, None, "crc32 mismatch"]})
    entries = predictor.process(rows)
    assert [e["seq"] for e in entries] == [2, 3] and entries[-1]["n_images"] == 3
    assert predictor.skipped == [{"seq": 4, "reason": "crc32 mismatch"}]
    assert any("SKIPPED" in line for line in lines) and sum("batch seq=" in line for line in lines) == 3
    report = predictor.report(model={"model": "sgd"})
    assert report["n_images"] == 3 and report["n_skipped_batches"] == 1
    assert len(report["batches"]) == 2 and report["model"] == {"model": "sgd"}


def test_stream_predictor_with_no_images_says_so():
    from consumer.evaluate.predicting import StreamPredictor

    class Model:
        classes = list(STREAM.classes)

    with pytest.raises(RuntimeError, match="no image was predicted"):
        StreamPredictor(Model()).report()
