"""Images/s of ``chestct ingest`` on a Spark standalone cluster with one worker and with two.

A master and N workers (1 core, 1.5 GiB each) run on 127.0.0.1 from the pyspark install;
the real producer serves the train split (64x64 grey); ``chestct ingest --master spark://``
streams it into a fresh table with hog + lbp. The figure is images over the whole
command's wall time (Spark start-up included), for 1 and for 2 workers in the same run,
and their ratio. On a 2-core machine both workers share the same two cores with the
producer and the driver, so the ratio stays near 1 here; docs/deployment.md says what to
expect on real hosts. ``CHESTCT_BENCH_QUICK=1`` streams the valid split instead (CI).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_producer import Processes, process_env, producer_args, wait_for_text  # noqa: E402
from producer.launch import free_port, wait_for_port  # noqa: E402
from quick import STREAM_SPLIT  # noqa: E402

SPLIT = STREAM_SPLIT
FEATURES = ["--features", "hog,lbp", "--feature-option", "hog.pixels_per_cell=16",
            "--feature-option", "hog.cells_per_block=2", "--feature-option", "lbp.grid=2"]


def _data() -> Path:
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / SPLIT).is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the cluster benchmark")
    return Path(env).resolve()




def _ingest_seconds(data: Path, workers: int, tmp: Path) -> tuple[float, int]:
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    env = process_env(SPARK_HOME=str(spark_class.parent.parent), SPARK_LOCAL_IP="127.0.0.1",
                      SPARK_LOG_DIR=str(tmp / "logs"))
    tmp.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    master_port, port = free_port(), free_port()
    url = f"spark://127.0.0.1:{master_port}"
    try:
        master = procs.start([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                              "--port", str(master_port), "--webui-port", str(free_port())],
                             tmp / "master.log", env=env)
        wait_for_port(master_port, master, timeout=120)
        for i in range(workers):
            log = tmp / f"worker{i}.log"
            worker = procs.start([str(spark_class), "org.apache.spark.deploy.worker.Worker", url, "--host",
                                  "127.0.0.1", "--cores", "1", "--memory", "1536m", "--webui-port",
                                  str(free_port()), "--work-dir", str(tmp / f"w{i}")], log, env=env)
            wait_for_text(log, "Successfully registered with master", worker)
        producer = procs.start(producer_args(data, SPLIT, port, "--image-size", "64", "64"),
                               tmp / "producer.log", env=env)
        wait_for_port(port, producer)
        t0 = time.perf_counter()
        consumer = procs.start([sys.executable, "-m", "consumer", "ingest", "--no-progress", "--master", url,
                                "--port", str(port), "--executor-cores", "1", "--work-dir", str(tmp / "work"),
                                "--spark-conf", f"spark.cores.max={workers}",
                                "--spark-conf", "spark.executor.memory=1g", *FEATURES],
                               tmp / "ingest.log", env=env)
        assert consumer.wait(1800) == 0, (tmp / "ingest.log").read_text()[-3000:]
        seconds = time.perf_counter() - t0
    finally:
        procs.stop_all()
    images = sum(1 for p in (data / SPLIT).rglob("*") if p.is_file())
    return seconds, images


def test_ingest_images_per_s_with_one_and_two_workers(benchmark, tmp_path):
    data = _data()
    results = {}

    def run():
        for workers in (1, 2):
            results[workers] = _ingest_seconds(data, workers, tmp_path / f"{workers}w")

    benchmark.group = f"cluster ingest 64px {SPLIT}"
    benchmark.extra_info["impl"] = "standalone"
    benchmark.pedantic(run, rounds=1, iterations=1)
    (s1, n), (s2, _) = results[1], results[2]
    benchmark.extra_info.update({"images": n, "images_per_s_1_worker": n / s1, "images_per_s_2_workers": n / s2,
                                 "two_over_one": s1 / s2})
    print(f"\ncluster ingest of {n} images: 1 worker {n / s1:.1f} img/s, 2 workers {n / s2:.1f} img/s "
          f"(x{s1 / s2:.2f}) on {os.cpu_count()} cores")
