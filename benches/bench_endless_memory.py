"""Memory of an endless ``chestct train`` over time: it must stay flat.

The real producer serves the real train split endlessly; ``chestct train`` (the default
svm on its bounded ``--window``, publishing a version every 500 images, 64 in the quick run) runs for
``CHESTCT_ENDLESS_MINUTES`` (default 20) minutes. Every minute the consumer's resident
memory is sampled: the driver's Python process, its JVM and Spark's Python workers. The
result: the samples, and the mean of the last 5 minutes against the mean of minutes 5-10
(target within 5%). ``CHESTCT_BENCH_QUICK=1`` runs 1 minute with a sample every 10 s
(a smoke run for CI: the flatness is only judged on a full run).

The samples are printed as they come (past pytest's capture) and kept in
``.benchmarks/endless-memory/`` as ``memory.csv`` and ``memory.png`` (the override:
``CHESTCT_BENCH_OUT``).
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from consumer_memory import PARTS, consumer_mib  # noqa: E402
from fake_producer import Processes, consumer_args, producer_args  # noqa: E402
from producer.launch import free_port, wait_for_port  # noqa: E402
from quick import QUICK  # noqa: E402

OUT = Path(os.environ.get("CHESTCT_BENCH_OUT", ROOT / ".benchmarks" / "endless-memory"))
MINUTES = 1.0 if QUICK else float(os.environ.get("CHESTCT_ENDLESS_MINUTES", "20"))
INTERVAL = 10.0 if QUICK else 60.0
#: Images per published version (the quick run must publish within its 2 minutes).
PUBLISH_EVERY = 64 if QUICK else 500


def _write_samples(samples: list[dict], drift: float | None) -> Path:
    """The samples as ``memory.csv`` and a stacked plot ``memory.png``; returns the folder."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    lines = ["minute,total_mib," + ",".join(f"{p}_mib" for p in PARTS)]
    lines += [f"{s['minute']:.2f},{s['total']:.0f}," + ",".join(f"{s[p]:.0f}" for p in PARTS) for s in samples]
    (OUT / "memory.csv").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.stackplot([s["minute"] for s in samples], *[[s[p] for s in samples] for p in PARTS],
                 labels=["driver (Python)", "JVM", "Python workers"], alpha=0.8)
    ax.set_xlabel("minutes of endless train")
    ax.set_ylabel("resident memory (MiB)")
    title = "consumer memory, endless chestct train"
    ax.set_title(title if drift is None else f"{title}: last 5 min vs 5-10 {drift:+.1%}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(OUT / "memory.png", dpi=120)
    plt.close(fig)
    return OUT


@pytest.fixture
def run_dir():
    """The run's work dir, model and logs. Not pytest's tmp_path: any pytest session started
    meanwhile on this machine prunes older tmp_path folders, and this run lasts 20 minutes."""
    folder = Path(tempfile.mkdtemp(prefix="chestct-endless-memory-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(int(MINUTES * 60) + 900)  # the suite's 600 s limit would cut a full run
def test_endless_train_memory_stays_flat(benchmark, run_dir, capsys):
    env = os.environ.get("CHESTCT_DATA")
    if not env or not (Path(env) / "train").is_dir():
        pytest.skip("set CHESTCT_DATA to the chest-ctscan folder to run the endless-memory benchmark")
    data = Path(env).resolve()
    samples: list[dict] = []

    def run():
        procs = Processes()
        port = free_port()
        try:
            producer = procs.start(producer_args(data, "train", port, "--endless"), run_dir / "producer.log")
            wait_for_port(port, producer)
            train = procs.start(consumer_args("train", "--save-path", str(run_dir / "model"), "--port", str(port),
                                              "--work-dir", str(run_dir / "work"),
                                              "--publish-every", str(PUBLISH_EVERY),
                                              "--master", "local[2]"), run_dir / "train.log")
            driver = psutil.Process(train.pid)
            t0 = time.monotonic()
            while time.monotonic() - t0 < MINUTES * 60:
                time.sleep(INTERVAL)
                assert train.poll() is None, (run_dir / "train.log").read_text()[-3000:]
                sample = consumer_mib(driver)
                assert sample is not None, "the train driver is gone"
                sample["minute"] = (time.monotonic() - t0) / 60
                samples.append(sample)
                with capsys.disabled():  # a 20-minute run shows its progress
                    print(f"minute {sample['minute']:5.1f}: total {sample['total']:7.0f} MiB (driver "
                          f"{sample['driver_python']:.0f}, JVM {sample['jvm']:.0f}, workers "
                          f"{sample['python_workers']:.0f})", flush=True)
            train.send_signal(signal.SIGINT)
            assert train.wait(300) == 130
        finally:
            procs.stop_all()

    benchmark.group = "endless train memory"
    benchmark.extra_info["impl"] = "svm-window"
    benchmark.pedantic(run, rounds=1, iterations=1)
    log = (run_dir / "train.log").read_text()
    published = log.count("published version")
    benchmark.extra_info.update({"minutes": MINUTES, "versions_published": published,
                                 "peak_total_mib": max(s["total"] for s in samples)})
    drift = None
    if MINUTES >= 20:
        middle = [s["total"] for s in samples if 5 <= s["minute"] <= 10]
        last = [s["total"] for s in samples if s["minute"] >= MINUTES - 5]
        drift = (sum(last) / len(last)) / (sum(middle) / len(middle)) - 1
        benchmark.extra_info["last5_vs_5to10"] = drift
    folder = _write_samples(samples, drift)
    with capsys.disabled():
        if drift is not None:
            print(f"\nlast 5 minutes vs minutes 5-10: {drift:+.1%} (target within 5%)")
        print(f"samples and plot: {folder}/memory.csv, memory.png")
    assert published >= 1
    assert drift is None or abs(drift) <= 0.05, f"memory is not flat: last 5 minutes vs minutes 5-10 {drift:+.1%}"
