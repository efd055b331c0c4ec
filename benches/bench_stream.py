"""End-to-end streaming throughput: producer -> chestct source -> feature stage -> Parquet.

The real producer streams the real train split endlessly (128x128 grey, batch 32); the
consumer runs the ingest query (``consumer.ingest.start_ingest``, local[2], one featrs
thread per task) with hog+lbp+glcm+gabor for ``EPOCHS`` epochs (one epoch per
micro-batch), once with the ``rust`` and once with the ``skimage`` backend, in the same
SparkSession. The first epoch is warm-up (Python workers start, modules import) and runs
in the benchmark's setup; the timed round is the remaining epochs, so
``images / median`` is the steady-state rate from the producer to committed Parquet
files. ``make bench`` prints ``median(skimage) / median(rust)``: the speed-up (target >= 5,
and >= 100 images/s with rust).

Peak memory of the consumer is sampled with psutil every 0.2 s: the driver's Python
process (this one), its JVM, and the sum over Spark's Python workers (the producer's
processes are excluded).

CHESTCT_DATA must point at the dataset; CHESTCT_BENCH_QUICK=1 streams 2 epochs of the valid split (CI);
CHESTCT_BENCH_EPOCHS changes the epoch count (>= 2),
CHESTCT_BENCH_FEATURES the feature families (e.g. ``hog`` alone shows the pipeline's ceiling).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from consumer.features import FeatureConfig
from producer.launch import Processes, free_port, tree_env, wait_for_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from consumer_memory import consumer_mib  # noqa: E402
from quick import QUICK, STREAM_SPLIT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = (128, 128)
BATCH = 32
EPOCHS = 2 if QUICK else max(2, int(os.environ.get("CHESTCT_BENCH_EPOCHS", "3")))
FEATURES = tuple(os.environ.get("CHESTCT_BENCH_FEATURES", "hog,lbp,glcm,gabor").split(","))
# HOG with the classic 16-pixel cells and 2x2 blocks (the library default is sized for 256px).
CONFIG = FeatureConfig(features=FEATURES, hog_pixels_per_cell=(16,), hog_cells_per_block=2)
GROUP = f"stream {SIZE[0]}px {'+'.join(CONFIG.features)}"


def _data_dir() -> Path:
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / "train").is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the streaming benchmark")
    return Path(env).resolve()


class PeakMemory:
    """Samples RSS of this process, its JVM and Spark's Python workers; keeps the peaks (MiB)."""

    def __init__(self, exclude: set[int], interval: float = 0.2):
        self.exclude = exclude
        self.interval = interval
        self.peaks = {"driver_python_mb": 0.0, "driver_jvm_mb": 0.0, "python_workers_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        sizes = consumer_mib(psutil.Process(), exclude=self.exclude)
        names = {"driver_python": "driver_python_mb", "jvm": "driver_jvm_mb", "python_workers": "python_workers_mb"}
        for part, key in names.items():
            self.peaks[key] = max(self.peaks[key], sizes[part])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@pytest.fixture(scope="module")
def producer():
    """An endless producer of the real train split; yields (port, hello, process ids)."""
    data = _data_dir()
    port = free_port()
    procs = Processes()
    try:
        # --augment 0: the stream's throughput per picture, comparable with earlier runs.
        proc = procs.start([sys.executable, "-m", "producer", "--augment", "0", "--directory", str(data),
                            "--split", STREAM_SPLIT, "--port", str(port), "--endless", "--image-size", *map(str, SIZE),
                            "--color-mode", "grayscale", "--batch-size", str(BATCH), "--no-progress"],
                           env=tree_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
        from consumer.stream.client import ConnectConfig, fetch_hello

        hello = fetch_hello(ConnectConfig(port=port))
        yield port, hello, {proc.pid}
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from consumer.spark import build_session

    session, parallelism = build_session("local[2]", app_name="chestct-bench")
    yield session, parallelism
    session.stop()


def _backend_available(backend: str) -> None:
    from consumer.features import backend_module

    try:
        backend_module(backend)
    except RuntimeError as exc:
        pytest.skip(f"backend {backend} unavailable here: {exc}")


@pytest.mark.parametrize("backend", ["rust", "skimage"])
def test_stream_to_parquet(benchmark, producer, spark, backend, tmp_path):
    from consumer.stream.follow import follow_query
    from consumer.stream.ingest import start_ingest
    from consumer.stream.table import read_table, stream_paths

    _backend_available(backend)
    port, hello, producer_pids = producer
    session, parallelism = spark
    per_epoch = hello["batches_per_epoch"]
    images_per_epoch = hello["images_per_epoch"]
    paths = stream_paths(tmp_path, hello, CONFIG, backend)
    # One epoch per micro-batch: the per-trigger overhead (logs, commit) is paid per epoch.
    options = {"port": str(port), "maxBatchesPerTrigger": str(per_epoch),
               "numPartitions": str(parallelism.slots),
               "endingSeq": str(EPOCHS * per_epoch), "readTimeout": "600"}
    done: list = []
    state: dict = {}

    def record(progress) -> None:
        # Both follow_query calls see the query's whole recent history: keep each batch once.
        if all(progress.batch_id != seen.batch_id for seen in done):
            done.append(progress)

    def warm_up():
        state["memory"] = PeakMemory(producer_pids).__enter__()
        query = start_ingest(session, source_options=options, config=CONFIG, backend=backend,
                             n_threads=parallelism.n_threads, paths=paths, finite=True)
        state["query"] = query
        follow_query(query, total_batches=None, progress_bar=False, on_batch=record,
                     poll_seconds=0.2, until=lambda: len(done) >= 1)
        state["t0"] = time.perf_counter()
        return (), {}

    def steady():
        follow_query(state["query"], total_batches=None, progress_bar=False, on_batch=record,
                     poll_seconds=0.2)

    benchmark.group = GROUP
    benchmark.extra_info["impl"] = backend
    benchmark.pedantic(steady, setup=warm_up, rounds=1, iterations=1, warmup_rounds=0)
    wall = time.perf_counter() - state["t0"]
    state["memory"].__exit__(None, None, None)
    table = read_table(session, paths.table, columns=["image_id", "seq"])
    steady_batches = done[1:]
    steady_rows = sum(b.rows for b in steady_batches)
    assert len(table) == EPOCHS * images_per_epoch
    assert steady_rows == (EPOCHS - 1) * images_per_epoch
    benchmark.extra_info.update({
        "images": steady_rows,
        "images_per_s": steady_rows / wall,
        "images_per_s_in_batches": steady_rows / sum(b.seconds for b in steady_batches),
        "warmup_epoch_s": done[0].seconds,
        "epochs": EPOCHS,
        "task_slots": parallelism.slots,
        "threads_per_task": parallelism.n_threads,
        **{k: round(v, 1) for k, v in state["memory"].peaks.items()},
    })
    print(f"\n{backend}: {steady_rows} images in {wall:.1f}s steady state = "
          f"{steady_rows / wall:.1f} images/s; warm-up epoch {done[0].seconds:.1f}s; peak memory "
          + json.dumps({k: round(v) for k, v in state["memory"].peaks.items()}))
