"""The consumer on a real Spark standalone cluster (master + worker from the pyspark install).

Master and worker run on 127.0.0.1 with free ports, in their own process groups, and are
killed afterwards whatever happens. ``chestct train --model rf --master spark://...`` streams
from the fake producer, builds the features table in the worker's executor, logs the running
rf's test-then-train metrics, refitting it every 2 batches, and saves the full fit.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from consumer.learn import versions

from conftest import free_port
from consumer.spark import JVM_OPTIONS
from fake_producer import (
    FakeProducer,
    FakeStream,
    Processes,
    consumer_args,
    port_is_free,
    process_env,
    wait_for_port,
    wait_for_text,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

STREAM = FakeStream(total_images=48, batch_size=8, image_shape=(32, 32, 1))


def _spark_class() -> Path:
    import pyspark

    path = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not path.exists():
        pytest.skip(f"this pyspark installation has no {path}")
    return path




def test_train_runs_on_a_standalone_master_and_worker(tmp_path):
    spark_class = _spark_class()
    import pyspark

    env = process_env(SPARK_HOME=str(Path(pyspark.__file__).parent), SPARK_LOCAL_IP="127.0.0.1",
                      SPARK_WORKER_DIR=str(tmp_path / "worker"), SPARK_LOG_DIR=str(tmp_path / "logs"))
    master_port, master_ui, worker_port, worker_ui = (free_port() for _ in range(4))
    master_url = f"spark://127.0.0.1:{master_port}"
    procs = Processes()
    try:
        master = procs.start([str(spark_class), "org.apache.spark.deploy.master.Master",
                              "--host", "127.0.0.1", "--port", str(master_port),
                              "--webui-port", str(master_ui)],
                             tmp_path / "master.log", env=env)
        wait_for_port(master_port, master, timeout=90)
        worker = procs.start([str(spark_class), "org.apache.spark.deploy.worker.Worker", master_url,
                              "--host", "127.0.0.1", "--port", str(worker_port), "--webui-port",
                              str(worker_ui), "--cores", "2", "--memory", "2g",
                              "--work-dir", str(tmp_path / "worker")], tmp_path / "worker.log", env=env)
        wait_for_text(tmp_path / "worker.log", "Successfully registered with master", worker)

        with FakeProducer(stream=STREAM) as fp:
            consumer = procs.start(consumer_args(
                "train", "--model", "rf", "--refit-every", "2", "--max-batches-per-trigger", "2",
                "--save-path", str(tmp_path / "model"), "--port", str(fp.port),
                "--work-dir", str(tmp_path / "work"), "--master", master_url, "--executor-cores", "2",
                "--features", "hog", "--feature-option", "hog.pixels_per_cell=8",
                "--feature-option", "hog.cells_per_block=2", "--backend", "skimage",
                "--spark-conf", "spark.executor.memory=1g"), tmp_path / "consumer.log", env=env)
            code = consumer.wait(420)
            subscriptions = list(fp.subscriptions)
        out = (tmp_path / "consumer.log").read_text()
        assert code == 0, out[-4000:]
    finally:
        procs.stop_all()
    assert all(port_is_free(p) for p in (master_port, worker_port))

    assert f"on {master_url}" in out
    # The running rf is refitted every 2 producer batches (after 1, 3, 5): 0 and 1 have no
    # model yet, 2.. are predicted before they are learned; the saved model is the full fit.
    lines = [m.group(0) for m in re.finditer(r"train seq=\s*\d+ images=.*", out)]
    assert len(lines) == STREAM.batches_per_epoch
    assert all("no model yet" in line for line in lines[:2])
    assert all(re.search(r"images=\s*\d+ acc=[\d.]+ P=[\d.]+ R=[\d.]+ F1=[\d.]+ .* img/s", line)
               for line in lines[2:])
    assert "(on 32 unseen)" in lines[-1]
    meta = json.loads((versions.resolve(tmp_path / "model") / "model.json").read_text())["meta"]
    assert meta["n_train_images"] == STREAM.total_images
    # The batches were read by the worker's executor, which logged into its app folder.
    executor_logs = list((tmp_path / "worker").glob("app-*/*/stderr"))
    assert executor_logs, "no executor ran on the worker"
    read = sorted(seq for start, stop in subscriptions for seq in range(start, stop))
    assert read == list(range(STREAM.batches_per_epoch))  # each batch read once
    assert os.path.getsize(executor_logs[0]) > 0
    # The executor JVM ran with chestct's JIT and GC options (the worker logs its command).
    command = next(line for line in executor_logs[0].read_text().splitlines() if "Executor Command" in line)
    assert all(option in command for option in JVM_OPTIONS.split()), command
