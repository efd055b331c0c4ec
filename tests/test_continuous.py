"""Continuous learning end to end: an endless producer, ``train --publish-every`` and
``predict --follow`` side by side; train is SIGKILLed and restarted once, the producer is
stopped with SIGTERM and restarted once; train and predict end with Ctrl-C.

Checked: versions appear in increasing order and each loads; no torn version is ever
visible (a watcher polls the save path the whole time); predict switched versions and its
report on Ctrl-C holds every batch it saw, in order and once; the feature table holds each
streamed image once per epoch.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from consumer.learn import model_store, versions
from consumer.learn.model import TrainedModel
from fake_producer import Processes, consumer_args, producer_args, wait_for_port, wait_until
from producer import synthetic
from producer.launch import free_port
from sink_log import read_table

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FEATURES = ["--features", "hog", "--feature-option", "hog.pixels_per_cell=8",
            "--feature-option", "hog.cells_per_block=2", "--backend", "skimage"]
PER_CLASS = 4  # 16 images a split: 4 batches of 4 per epoch


class VersionWatcher(threading.Thread):
    """Polls a save path: every version it can see must be whole and verify."""

    def __init__(self, save: Path):
        super().__init__(daemon=True)
        self.save = save
        self.seen: list[str] = []
        self.torn: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                latest = versions.latest(self.save)
            except versions.NoModel as exc:
                self.torn.append(str(exc))
                latest = None
            for name in versions.published(self.save):
                if name not in self.seen:
                    try:
                        model_store.read_meta(self.save / versions.VERSIONS_DIR / name)
                    except model_store.ModelRefused as exc:
                        self.torn.append(f"{name}: {exc}")
                    self.seen.append(name)
            if latest is not None and latest not in self.seen:
                self.torn.append(f"LATEST names {latest} before it is listed")
            time.sleep(0.05)




def test_endless_train_publishes_and_predict_follows_through_restarts(tmp_path):
    data = tmp_path / "data"
    synthetic.generate(data, per_class=PER_CLASS, progress=False)
    port = free_port()
    save, work = tmp_path / "model", tmp_path / "work"
    producer_cmd = producer_args(data, "train", port, "--endless", "--batch-size", "4", "--image-size", "32", "32",
                                 "--sleep", "0.2")
    train_cmd = consumer_args("train", "--model", "sgd", "--publish-every", "24", "--save-path", str(save),
                              "--port", str(port), "--work-dir", str(work / "train"), "--master", "local[1]",
                              "--max-batches-per-trigger", "2", "--connect-timeout", "90", *FEATURES)
    predict_cmd = consumer_args("predict", "--follow", "--save-path", str(save), "--port", str(port),
                                "--work-dir", str(work / "predict"), "--master", "local[1]",
                                "--max-batches-per-trigger", "2", "--connect-timeout", "90",
                                "--report", str(tmp_path / "report.json"), *FEATURES[-2:])
    procs = Processes()
    watcher = VersionWatcher(save)
    watcher.start()
    logs = {name: tmp_path / f"{name}.log" for name in ("producer", "producer2", "train", "train2", "predict")}
    try:
        producer = procs.start(producer_cmd, logs["producer"])
        wait_for_port(port, producer)
        train = procs.start(train_cmd, logs["train"])
        wait_until(lambda: len(versions.published(save)) >= 1, "a first version", 240, watch=[(train, logs["train"])])
        predict = procs.start(predict_cmd, logs["predict"])
        wait_until(lambda: len(versions.published(save)) >= 2, "a second version", 240, watch=[(train, logs["train"])])
        Processes.kill(train)  # SIGKILL: driver, JVM and workers at once
        train.wait(30)
        before_restart = len(versions.published(save))
        train = procs.start(train_cmd, logs["train2"])
        wait_until(lambda: len(versions.published(save)) > before_restart, "a version after the train restart", 240,
                   watch=[(train, logs["train2"])])
        producer.send_signal(signal.SIGTERM)  # graceful: connections get a `shutdown` error
        assert producer.wait(30) == 0
        producer = procs.start(producer_cmd, logs["producer2"])
        wait_for_port(port, producer)
        after_producer = len(versions.published(save))
        wait_until(lambda: len(versions.published(save)) > after_producer, "a version after the producer restart", 240,
                   watch=[(train, logs["train2"])])
        wait_until(lambda: "switched to model version" in logs["predict"].read_text(), "predict to switch versions", 240,
                   watch=[(predict, logs["predict"])])
        for proc in (train, predict):
            proc.send_signal(signal.SIGINT)
        assert train.wait(120) == 130, logs["train2"].read_text()[-3000:]
        assert predict.wait(120) == 130, logs["predict"].read_text()[-3000:]
    finally:
        watcher.stop.set()
        procs.stop_all()
    watcher.join(5)

    assert not watcher.torn, watcher.torn
    names = versions.published(save)
    assert names == [versions.version_name(i) for i in range(1, len(names) + 1)] and len(names) >= 4
    parents = [TrainedModel.load(save / "versions" / n).meta["version"]["parent"] for n in names]
    assert parents == [None] + names[:-1]  # one lineage, across the SIGKILL and restart
    images_seen = [TrainedModel.load(save / "versions" / n).meta["version"]["images_seen"] for n in names]
    assert images_seen == sorted(images_seen)
    assert "switched to model version" in logs["predict"].read_text()
    # predict's report on Ctrl-C: what it saw, across epochs and the producer's restart.
    report = json.loads((tmp_path / "report.json").read_text())
    seqs = [b["seq"] for b in report["batches"]]
    assert report["interrupted"] is True and seqs == list(range(len(seqs)))  # in order, none twice
    assert len(seqs) > 4 and report["n_images"] == 4 * len(seqs)  # past the first epoch (4 batches of 4)
    assert len(report["model_versions"]) >= 2
    assert "Traceback" not in logs["train2"].read_text()
    (table,) = (work / "train").glob("streams/*/*/table")
    rows = read_table(table)
    images = rows[rows["image_id"].notna()]
    per_epoch = images.groupby(["epoch", "image_id"]).size()
    assert per_epoch.max() == 1, per_epoch[per_epoch > 1].head()
    complete = images.groupby("epoch")["image_id"].nunique()
    assert (complete.iloc[:-1] == 4 * PER_CLASS).all() and len(complete) >= 3
