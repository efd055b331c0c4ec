"""Producer throughput and wire size on the real train split (128x128 grayscale, batch 32).

* ``producer``: a ``python -m producer`` process (2 decoding threads, no sleep) streaming the
  whole split to a client here that only decodes frames (``wire.recv_message`` +
  ``wire.batch_pixels``); one round = one full stream.
* ``opencv``: what OpenCV alone reaches on the same files and cores: a ThreadPool of 2 doing
  ``cv2.imread`` + ``cvtColor`` + ``resize`` (INTER_AREA); one round = every file once.

Both rounds process the same images, so ``median(opencv) / median(producer)`` (the ratio
``make bench`` prints) is the producer's throughput as a fraction of OpenCV's (target >= 0.9).
The machine is shared, so each benchmark runs a round of the other workload before each of
its own rounds: both see the same background load. CPU seconds per image (producer process
plus client, against the OpenCV threads) are recorded too: they hardly depend on that load.
Wire size is compared with raw pixel bytes (target <= 1.4) and with the original project's
format, one JSON line per batch with a ``"feature-<i>"`` key per pixel. That producer runs
without its image cache (``--image-cache-bytes 0``): every round decodes, as OpenCV's does.

A second group, ``producer 128px replays``, serves the same stream again from a producer
with its image cache (the default), against the same producer decoding every round:
what a Spark replay or a later epoch of an endless stream costs.
"""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from producer import dataset, wire
from producer.launch import Processes, free_port, tree_env, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
GROUP = "producer 128px"
REPLAY_GROUP = "producer 128px replays"
SIZE = (128, 128)
BATCH = 32
THREADS = 2
ROUNDS = 7


def _data_dir() -> Path:
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / "train").is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the producer benchmark")
    return Path(env)


@pytest.fixture(scope="module")
def results(request):
    """Collects both rows and prints the comparison table when the module ends."""
    rows: dict[str, dict] = {}
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not rows:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        _print_table(reporter.write_line, rows)


def _print_table(write, rows: dict[str, dict]) -> None:
    write("")
    write(f"{GROUP}: {rows.get('producer', rows.get('opencv'))['images']} train images, batch {BATCH}")
    write(f"{'impl':<16}{'images/s':>12}{'CPU ms/image':>14}{'bytes/image':>14}{'vs raw pixels':>16}")
    raw = SIZE[0] * SIZE[1]
    for impl, row in rows.items():
        write(f"{impl:<16}{row['images_per_s']:>12.0f}{row['cpu_ms_per_image']:>14.2f}"
              f"{row['bytes_per_image']:>14.0f}{row['bytes_per_image'] / raw:>15.2f}x")
    if "producer" in rows:
        legacy = rows["producer"]["legacy_json_bytes_per_image"]
        write(f"{'original JSON':<16}{'':>12}{'':>14}{legacy:>14.0f}{legacy / raw:>15.2f}x")
    if {"producer", "opencv"} <= set(rows):
        ratio = rows["producer"]["images_per_s"] / rows["opencv"]["images_per_s"]
        cpu = rows["opencv"]["cpu_ms_per_image"] / rows["producer"]["cpu_ms_per_image"]
        write(f"producer / opencv: throughput {ratio:.2f} (medians), "
              f"{rows['opencv']['paired_producer_ratio']:.2f} (median of back-to-back pairs), "
              f"CPU per image {cpu:.2f}; target >= 0.9")


def _start_producer(procs: Processes, *extra: str) -> tuple[int, int]:
    port = free_port()
    proc = procs.start(
        # --augment 0: the producer's throughput per picture, comparable with earlier runs.
        [sys.executable, "-m", "producer", "--directory", str(_data_dir()), "--split", "train", "--augment", "0",
         "--batch-size", str(BATCH), "--image-size", *map(str, SIZE), "--color-mode", "grayscale",
         "--no-shuffle", "--workers", str(THREADS), "--port", str(port), "--no-progress",
         "--log-level", "WARNING", *extra],
        env=tree_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return port, proc.pid


@pytest.fixture(scope="module")
def producer_process():
    procs = Processes()
    try:
        yield _start_producer(procs, "--image-cache-bytes", "0")  # every round decodes, like OpenCV's
    finally:
        procs.stop_all()


def consume_stream(port: int) -> dict:
    """Read one whole stream, decoding every frame like a consumer would (the timed work)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        wire.recv_message(sock)
        wire.send_message(sock, wire.subscribe(0))
        images = 0
        while True:
            msg = wire.recv_message(sock)
            if msg["type"] != "batch":
                assert msg["type"] == "end", msg
                break
            images += wire.batch_pixels(msg).shape[0]
    return {"images": images, "end": msg}


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "producer closed the connection mid-frame"
        buf += chunk
    return bytes(buf)


def measure_wire(port: int) -> dict:
    """Untimed pass counting every byte the producer sends for the stream (headers included)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        wire.recv_message(sock)
        wire.send_message(sock, wire.subscribe(0))
        total = images = 0
        first_batch = None
        while True:
            header = _recv_exactly(sock, 4)
            payload = _recv_exactly(sock, int.from_bytes(header, "big"))
            total += len(header) + len(payload)
            msg = wire.decode(payload)
            if msg["type"] == "end":
                return {"wire_bytes": total, "images": images, "first_batch": first_batch}
            pixels = wire.batch_pixels(msg)
            images += pixels.shape[0]
            if first_batch is None:
                first_batch = (msg, pixels)


def legacy_json_line(msg: dict, pixels: np.ndarray) -> bytes:
    """The original format: one JSON line per batch, one ``"feature-<i>"`` key per pixel value."""
    rows = {}
    for i, (image, label) in enumerate(zip(pixels, msg["labels"])):
        row = {f"feature-{j}": int(v) for j, v in enumerate(image.ravel())}
        row["label"] = label
        rows[str(i)] = row
    return (json.dumps(rows) + "\n").encode("utf-8")


class Workloads:
    """Both workloads, each call timed (wall and CPU) so rounds of one can be interleaved with the other.

    Each benchmark times its own workload and runs the other one (untimed by
    pytest-benchmark) as the setup of every round, so both see the same background load
    on a shared machine.
    """

    def __init__(self, port: int, paths: list[str], pool: ThreadPool, producer_pid: int):
        self.port = port
        self.paths = paths
        self.pool = pool
        self.producer = psutil.Process(producer_pid)
        self.log: dict[str, list[tuple[float, float]]] = {"producer": [], "opencv": []}
        self.order: list[tuple[str, float]] = []  # every run in time order, for paired ratios
        self.last_stream: dict | None = None

    def run_producer(self) -> dict:
        cpu0 = _own_cpu() + _cpu(self.producer)
        t0 = time.perf_counter()
        self.last_stream = consume_stream(self.port)
        wall = time.perf_counter() - t0
        self.log["producer"].append((wall, _own_cpu() + _cpu(self.producer) - cpu0))
        self.order.append(("producer", wall))
        return self.last_stream

    def run_opencv(self) -> list:
        cpu0 = _own_cpu()
        t0 = time.perf_counter()
        outs = self.pool.map(_opencv_one, self.paths, chunksize=4)
        wall = time.perf_counter() - t0
        self.log["opencv"].append((wall, _own_cpu() - cpu0))
        self.order.append(("opencv", wall))
        return outs

    def paired_ratio(self) -> float:
        """Median over back-to-back (OpenCV, producer) runs of opencv_time / producer_time.

        Each pair ran seconds apart, so a change of background load between rounds
        cancels out of its ratio.
        """
        ratios = []
        for (a, wall_a), (b, wall_b) in zip(self.order[::2], self.order[1::2]):
            if {a, b} == {"producer", "opencv"}:
                times = {a: wall_a, b: wall_b}
                ratios.append(times["opencv"] / times["producer"])
        return float(np.median(ratios))

    def cpu_per_image(self, impl: str) -> float:
        return float(np.median([cpu for _, cpu in self.log[impl]])) / len(self.paths)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _opencv_one(path: str) -> np.ndarray:
    image = cv2.imread(path)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def workloads(producer_process):
    port, pid = producer_process
    _, files = dataset.list_images(_data_dir(), "train")
    with ThreadPool(THREADS) as pool:
        yield Workloads(port, [str(f.path) for f in files], pool, pid)


def _setup_with(run):
    """pytest-benchmark wants a setup that returns None; run the other workload and drop its result."""
    def setup():
        run()
    return setup


def _median(benchmark, run) -> float:
    """The benchmark's median; with --benchmark-disable (make bench-check) one timed run."""
    if benchmark.stats is not None:
        return benchmark.stats.stats.median
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def test_producer_throughput(benchmark, workloads, results):
    benchmark.group = GROUP
    benchmark.extra_info["impl"] = "producer"
    benchmark.pedantic(workloads.run_producer, setup=_setup_with(workloads.run_opencv), rounds=ROUNDS,
                       warmup_rounds=1, iterations=1)
    run = workloads.last_stream
    assert run["end"]["images"] == run["images"] == len(workloads.paths) and run["end"]["skipped"] == 0
    median = _median(benchmark, workloads.run_producer)
    sizes = measure_wire(workloads.port)
    assert sizes["images"] == run["images"]
    msg, pixels = sizes["first_batch"]
    legacy = legacy_json_line(msg, pixels)
    row = {
        "images": run["images"],
        "images_per_s": run["images"] / median,
        "cpu_ms_per_image": 1e3 * workloads.cpu_per_image("producer"),
        # bytes on the wire for the whole stream (hello, batches, end; headers included), per image
        "bytes_per_image": sizes["wire_bytes"] / run["images"],
        "legacy_json_bytes_per_image": len(legacy) / pixels.shape[0],
    }
    row["wire_ratio"] = row["bytes_per_image"] / (SIZE[0] * SIZE[1])
    row["legacy_json_ratio"] = row["legacy_json_bytes_per_image"] / (SIZE[0] * SIZE[1])
    benchmark.extra_info.update(row)
    results["producer"] = row


def test_opencv_throughput(benchmark, workloads, results):
    benchmark.group = GROUP
    benchmark.extra_info["impl"] = "opencv"
    outs = benchmark.pedantic(workloads.run_opencv, setup=_setup_with(workloads.run_producer), rounds=ROUNDS,
                              warmup_rounds=1, iterations=1)
    assert len(outs) == len(workloads.paths) and outs[0].shape == SIZE
    row = {"images": len(outs), "images_per_s": len(outs) / _median(benchmark, workloads.run_opencv),
           "cpu_ms_per_image": 1e3 * workloads.cpu_per_image("opencv"),
           "bytes_per_image": float(SIZE[0] * SIZE[1]),
           # producer throughput / OpenCV throughput over back-to-back runs of both tests
           "paired_producer_ratio": workloads.paired_ratio()}
    benchmark.extra_info.update(row)
    results["opencv"] = row


@pytest.fixture(scope="module")
def replay_producers():
    """The same stream from a producer with its image cache (warmed by one full stream) and
    from one without."""
    procs = Processes()
    try:
        cached = _start_producer(procs)
        decoding = _start_producer(procs, "--image-cache-bytes", "0")
        consume_stream(cached[0])
        yield {"producer": cached, "producer, no image cache": decoding}
    finally:
        procs.stop_all()


@pytest.mark.parametrize("impl", ["producer", "producer, no image cache"])
def test_producer_replay(benchmark, replay_producers, impl):
    port, pid = replay_producers[impl]
    process = psutil.Process(pid)
    benchmark.group = REPLAY_GROUP
    benchmark.extra_info["impl"] = impl
    cpu0 = _cpu(process)
    run = benchmark.pedantic(consume_stream, args=(port,), rounds=ROUNDS, warmup_rounds=1, iterations=1)
    rounds = ROUNDS + 1 if benchmark.stats is not None else 1
    assert run["end"]["images"] == run["images"] and run["end"]["skipped"] == 0
    benchmark.extra_info["images"] = run["images"]
    benchmark.extra_info["producer_cpu_ms_per_image"] = 1e3 * (_cpu(process) - cpu0) / (rounds * run["images"])
