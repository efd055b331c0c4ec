"""The product as a user runs it: ``chestct train`` then ``chestct predict`` at their defaults.

The real producer serves the real train split, then the test split, with no flags; the
consumer runs with no flags but the save path. Measured in one run:

* whole-command wall time and steady images/s of train and of predict: the images of the
  micro-batches after the first, over the time from the first micro-batch's last line to
  the last line (:func:`steady_rate`);
* the time from the producer sending predict's first batch to the first prediction line;
* per-producer-batch latency p50 / p99: from the producer sending a batch (its DEBUG log,
  ``sent batch N at T``) to that batch's prediction line reaching the terminal;
* the consumer's peak memory: driver Python, JVM, Python workers (RSS, psutil, every
  0.2 s), and the whole tree's peak PSS, every second (RSS counts the pages that Spark's
  forked Python workers share once per process; PSS divides them among the processes;
  reading it costs the pipeline CPU, see :data:`PSS_EVERY_S`);
* the bound: ``cores / (decode + default vector)`` per image, both measured here on the
  same images (OpenCV decode and preprocessing as the producer does it, augmented copies
  of the train split included; the default feature vector through featrs on one core),
  and the steady rate as a share of it. Train's bound is measured on the train split,
  predict's on its own split.

``CHESTCT_BENCH_QUICK=1`` (CI) streams the valid split for both commands.
``CHESTCT_BENCH_PRODUCER_ARGS`` adds producer flags (e.g. ``--read-ahead 0``, to compare).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from consumer_memory import consumer_mib  # noqa: E402
from fake_producer import Processes, process_env, producer_args  # noqa: E402
from producer.launch import free_port, wait_for_port  # noqa: E402
from quick import QUICK  # noqa: E402

SPLITS = ("valid", "valid") if QUICK else ("train", "test")
SENT = re.compile(r"sent batch (\d+) at ([\d.]+)")
LINE = re.compile(r"^(?:train|batch) seq=\s*(\d+) images=\s*(\d+)")


#: How often the consumer's memory is read. RSS by kind of process costs about 2 ms of
#: CPU a read; the tree's PSS about 25 ms (the kernel walks every page of the JVM, the
#: driver and each worker; measured during ``chestct predict`` here). Read every 0.2 s,
#: PSS alone took 12 % of one of this machine's two cores from the pipeline it measured.
RSS_EVERY_S = 0.2
PSS_EVERY_S = 1.0


class Watched:
    """A consumer subprocess whose stdout lines are stamped on arrival and whose memory is sampled."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=ROOT, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self.peaks = {"driver_python_mib": 0.0, "jvm_mib": 0.0, "python_workers_mib": 0.0, "total_mib": 0.0,
                      "total_pss_mib": 0.0}
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._sample, daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    def _sample(self) -> None:
        driver = psutil.Process(self.proc.pid)
        last_pss = 0.0
        while self.proc.poll() is None:
            pss = time.monotonic() - last_pss >= PSS_EVERY_S
            now = consumer_mib(driver, pss=pss)
            if now is None:
                break
            if pss:
                last_pss = time.monotonic()
            for k, v in now.items():
                self.peaks[f"{k}_mib"] = max(self.peaks[f"{k}_mib"], v)
            time.sleep(RSS_EVERY_S)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._threads[0].join(10)
        return code

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


#: Lines closer together than this belong to one micro-batch: a micro-batch prints the lines
#: of all its producer batches at once, micro-batches come about half a second apart.
BURST_GAP_S = 0.1


def steady_rate(lines: list[tuple[float, str]]) -> float:
    """Images per second over whole micro-batches, after the first.

    Per-batch lines arrive in bursts, one per micro-batch. Counting from the first line
    would credit the first burst's other images to the time after it (with five
    micro-batches of eight lines, about 20 % too many); the window starts at the first
    burst's last line instead. 0.0 with fewer than two bursts.
    """
    batches = [(t, int(m.group(2))) for t, line in lines if (m := LINE.match(line))]
    end_of_first = next((i for i in range(len(batches) - 1) if batches[i + 1][0] - batches[i][0] > BURST_GAP_S),
                        None)
    if end_of_first is None:
        return 0.0
    (t0, n0), (t1, n1) = batches[end_of_first], batches[-1]
    return (n1 - n0) / max(t1 - t0, 1e-9)


def test_steady_rate_counts_whole_micro_batches():
    # Three micro-batches of 2 producer batches (8 images each), 1 s apart: 32 images
    # after the first burst, in 2 s. Counting from the first line would give 40 / 2.
    lines = [(t + dt, f"batch seq={seq:>5} images={8 * (seq + 1):>6} acc=1.0")
             for seq, (t, dt) in enumerate([(0, 0), (0, 0.004), (1, 0), (1, 0.004), (2, 0), (2, 0.004)])]
    assert steady_rate(lines) == pytest.approx(32 / 2.0, rel=1e-3)
    assert steady_rate(lines[:2]) == 0.0  # one burst: no steady state yet
    assert steady_rate([(0.0, "other output"), *lines[:4]]) == pytest.approx(16 / 1.0, rel=1e-2)


def _bound(data: Path, split: str, n: int = 32) -> dict:
    """Seconds per streamed image of decode + default vector on one core, and the 2-core bound.

    The decode is the producer's work per image of the split's default stream: on ``train``
    a picture and its augmented copies (re-rendered, then decoded), averaged over them all.
    """
    from consumer.features import FeatureConfig, extract
    import cv2

    from producer import augment, imaging
    from producer.batch import load_image
    from producer.stream import StreamSpec

    copies = augment.default_copies(split)
    # The producer's own files and decode path: a picture's copies follow it in id order.
    spec = StreamSpec.from_directory(data, split, augment=copies, batch_size=1)  # no batches built here
    files = spec.files[: n * (1 + copies)]
    # On one core, as the producer runs it (imaging.opencv_on_calling_threads): OpenCV's own
    # pool would otherwise spread a resize over both cores and understate the decode.
    threads = cv2.getNumThreads()
    imaging.opencv_on_calling_threads()
    try:
        t0 = time.perf_counter()
        loaded = [(f, load_image(f, spec)) for f in files]
        decode = (time.perf_counter() - t0) / len(files)
    finally:
        cv2.setNumThreads(threads)
    stack = np.stack([img for f, img in loaded if f.augment is None and isinstance(img, np.ndarray)])
    config = FeatureConfig()
    extract(stack[:2], config, backend="rust", n_threads=1)  # warm-up
    t0 = time.perf_counter()
    for img in stack:
        extract(img[None], config, backend="rust", n_threads=1)
    vector = (time.perf_counter() - t0) / len(stack)
    cores = os.cpu_count() or 1
    return {"decode_ms": decode * 1e3, "vector_ms": vector * 1e3, "augmented_copies": copies,
            "bound_images_per_s": cores / (decode + vector)}


def _stage(data: Path, split: str, command: list[str], tmp: Path) -> tuple[Watched, float, str]:
    procs = Processes()
    port = free_port()
    try:
        # augment=None: the product's default, augmented copies on the train split.
        extra = os.environ.get("CHESTCT_BENCH_PRODUCER_ARGS", "").split()
        producer = procs.start(producer_args(data, split, port, "--log-level", "DEBUG", *extra, augment=None),
                               tmp / f"producer-{split}.log")
        wait_for_port(port, producer)
        t0 = time.perf_counter()
        watched = Watched([sys.executable, "-m", "consumer", *command, "--port", str(port), "--no-progress",
                           "--work-dir", str(tmp / "work")], process_env())
        code = watched.wait(3600)
        wall = time.perf_counter() - t0
        assert code == 0, watched.output()[-3000:]
    finally:
        procs.stop_all()
    return watched, wall, (tmp / f"producer-{split}.log").read_text(errors="replace")


def test_train_then_predict_at_the_defaults(benchmark, tmp_path):
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / "train").is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the pipeline benchmark")
    data = Path(env).resolve()
    result: dict = {}

    def run():
        train, train_wall, _ = _stage(data, SPLITS[0], ["train", "--save-path", str(tmp_path / "model")], tmp_path)
        predict, predict_wall, producer_log = _stage(
            data, SPLITS[1], ["predict", "--save-path", str(tmp_path / "model"),
                              "--report", str(tmp_path / "report.json")], tmp_path)
        result.update(train=train, train_wall=train_wall, predict=predict, predict_wall=predict_wall,
                      sent={int(s): float(t) for s, t in SENT.findall(producer_log)})

    benchmark.group = "pipeline at the defaults"
    benchmark.extra_info["impl"] = "chestct"
    benchmark.pedantic(run, rounds=1, iterations=1)
    train_bound, predict_bound = _bound(data, SPLITS[0]), _bound(data, SPLITS[1])
    predicted = [(t, int(m.group(1))) for t, line in result["predict"].lines if (m := LINE.match(line))]
    sent = result["sent"]
    latencies = sorted(t - sent[seq] for t, seq in predicted if seq in sent)
    first_sent = min(sent.values()) if sent else float("nan")
    train_rate, predict_rate = steady_rate(result["train"].lines), steady_rate(result["predict"].lines)
    info = {
        "train_wall_s": result["train_wall"], "predict_wall_s": result["predict_wall"],
        "train_steady_images_per_s": train_rate, "predict_steady_images_per_s": predict_rate,
        "first_prediction_s": predicted[0][0] - first_sent if predicted else float("nan"),
        "batch_latency_p50_s": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "batch_latency_p99_s": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        **{f"train_peak_{k}": v for k, v in result["train"].peaks.items()},
        **{f"predict_peak_{k}": v for k, v in result["predict"].peaks.items()},
        **{f"train_{k}": v for k, v in train_bound.items()},
        **{f"predict_{k}": v for k, v in predict_bound.items()},
        "predict_share_of_bound": predict_rate / predict_bound["bound_images_per_s"],
        "train_share_of_bound": train_rate / train_bound["bound_images_per_s"],
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"{k}: {v:.3f}" for k, v in info.items()))
    assert predicted and latencies
