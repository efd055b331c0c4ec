#!/usr/bin/env python
"""Where ``chestct predict``'s time goes, micro-batch by micro-batch.

Starts the producer on a split (DEBUG log: the time each batch is sent) and ``chestct
predict`` with a trained model, and meanwhile samples every 20 ms the CPU seconds of each
process (``/proc/PID/stat``): the producer, the driver, the JVM, Spark's Python workers.
It prints, over the steady state (the micro-batches after the first):

- images/s (whole micro-batches, as ``benches/bench_pipeline.py`` counts them),
- CPU milliseconds per image by kind of process, and how busy the machine was,
- the first prediction and the p50 / p99 batch latency (from the producer sending a batch
  to its line), and each micro-batch's Spark durations (``durationMs`` of its progress),

and writes ``timeline.png`` (CPU by kind of process over time, a tick per prediction
line) and ``timeline.json`` (the samples) under ``--out``. The sampler's own CPU shows as
``sampler``.

    python scripts/predict-timeline.py --model chestct-work/model --data ../shared/data/chest-ctscan
    python scripts/predict-timeline.py --model M --producer-arg=--read-ahead --producer-arg=0
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from producer.launch import free_port, tree_env, wait_for_port  # noqa: E402

#: Process kinds, told by their command line (first match wins).
KINDS = (("jvm", "java"), ("jvm", "spark-class"), ("python worker", "pyspark.daemon pyspark.worker"),
         ("spark python helpers", "pyspark."), ("producer", "-m producer"), ("driver", "consumer"))
SENT = re.compile(r"sent batch (\d+) at ([\d.]+)")
LINE = re.compile(r"^batch seq=\s*(\d+) images=\s*(\d+)")
#: Runs ``chestct predict`` with each micro-batch's Spark durations appended to a file.
DRIVER = """
import json, sys
import consumer.stream.follow as follow
from consumer.cli import main
summarise, out = follow.batch_progress, sys.argv.pop(1)
def logged(progress):
    with open(out, "a") as f:
        f.write(json.dumps({"batch": progress["batchId"], "rows": progress.get("numInputRows"),
                            "ms": progress.get("durationMs")}) + "\\n")
    return summarise(progress)
follow.batch_progress = logged
sys.exit(main(sys.argv[1:]))
"""


def kind_of(cmdline: str) -> str:
    return next((kind for kind, marker in KINDS if marker in cmdline), "other")


def tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (children files are cheap to read)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def cpu_seconds(pid: int, tick: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / tick


def machine_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        values = list(map(int, f.readline().split()[1:]))
    return sum(values) - values[3] - values[4], sum(values)


def sample(roots: list[int], stop: threading.Event, out: list, cmd: dict[int, str], interval: float = 0.02) -> None:
    """Append ``(time, {pid: CPU s}, machine busy)`` to ``out`` and command lines to ``cmd``
    (read again every second: Spark's launcher script execs the JVM in its own process)."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    refreshed = 0.0
    while not stop.is_set():
        pids = [p for root in roots for p in tree(root)] + [me]
        now = time.time()
        out.append((now, {p: c for p in pids if (c := cpu_seconds(p, tick)) is not None}, machine_busy()))
        refresh = now - refreshed > 1.0
        if refresh:
            refreshed = now
        for pid in pids:
            if refresh or pid not in cmd:
                cmd[pid] = command(pid) or cmd.get(pid, "")
        time.sleep(interval)


def command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="save path of a trained model (chestct train --save-path)")
    ap.add_argument("--data", default=os.environ.get("CHESTCT_DATA"), help="dataset folder (default: $CHESTCT_DATA)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--producer-arg", action="append", default=[], help="extra producer flag (repeatable)")
    ap.add_argument("--consumer-arg", action="append", default=[], help="extra chestct predict flag (repeatable)")
    ap.add_argument("--out", type=Path, default=Path("chestct-work/timeline"))
    args = ap.parse_args(argv)
    if not args.data:
        ap.error("--data or CHESTCT_DATA is required")
    args.out.mkdir(parents=True, exist_ok=True)
    env = tree_env()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    port = free_port()
    producer_log, progress_log = args.out / "producer.log", args.out / "progress.jsonl"
    progress_log.unlink(missing_ok=True)
    with open(producer_log, "w") as log:
        producer = subprocess.Popen([sys.executable, "-m", "producer", "--directory", args.data, "--split", args.split,
                                     "--port", str(port), "--no-progress", "--log-level", "DEBUG", *args.producer_arg],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        wait_for_port(port, producer)
        consumer = subprocess.Popen([sys.executable, "-c", DRIVER, str(progress_log), "predict", "--port", str(port),
                                     "--no-progress", "--save-path", args.model, "--work-dir", str(args.out / "work"),
                                     "--report", str(args.out / "report.json"), *args.consumer_arg],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: lines.extend((time.time(), l.rstrip()) for l in consumer.stdout))
        samples: list = []
        cmd: dict[int, str] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=([producer.pid, consumer.pid], stop, samples, cmd))
        reader.start()
        sampler.start()
        code = consumer.wait()
        stop.set()
        sampler.join()
        reader.join()
    finally:
        producer.terminate()
        producer.wait(30)
    if code != 0:
        print("\n".join(l for _, l in lines[-30:]))
        return code
    cmd[os.getpid()] = "sampler"
    return report(args, lines, samples, cmd, producer_log.read_text(), progress_log)


def report(args, lines, samples, cmd: dict[int, str], producer_log: str, progress_log: Path) -> int:
    kinds = {p: ("sampler" if c == "sampler" else kind_of(c)) for p, c in cmd.items()}
    batches = [(t, int(m.group(1)), int(m.group(2))) for t, l in lines if (m := LINE.match(l))]
    ends = [i for i in range(len(batches) - 1) if batches[i + 1][0] - batches[i][0] > 0.1]
    if not ends:
        print("fewer than two micro-batches: no steady state to show")
        return 1
    (t0, _, n0), (t1, _, n1) = batches[ends[0]], batches[-1]
    times = np.array([s[0] for s in samples])

    def at(t):
        return samples[int(np.argmin(np.abs(times - t)))]

    s0, s1 = at(t0), at(t1)
    by_kind: dict[str, float] = {}
    for pid, cpu in s1[1].items():
        by_kind[kinds[pid]] = by_kind.get(kinds[pid], 0.0) + cpu - s0[1].get(pid, 0.0)
    busy = (s1[2][0] - s0[2][0]) / max(s1[2][1] - s0[2][1], 1)
    images = n1 - n0
    print(f"steady: {images / (t1 - t0):.1f} images/s ({images} images in {t1 - t0:.2f} s, "
          f"{len(ends)} micro-batches after the first); machine busy {busy * 100:.0f}%")
    print("CPU ms per image, steady state:")
    for kind, cpu in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:22s} {cpu / images * 1e3:6.2f}")
    sent = {int(s): float(t) for s, t in SENT.findall(producer_log)}
    latencies = sorted(t - sent[seq] for t, seq, _ in batches if seq in sent)
    if sent and latencies:
        print(f"first prediction {batches[0][0] - min(sent.values()):.2f} s after the first batch was sent; "
              f"batch latency p50 {np.percentile(latencies, 50):.2f} s, p99 {np.percentile(latencies, 99):.2f} s")
    progress = [json.loads(l) for l in progress_log.read_text().splitlines()] if progress_log.exists() else []
    if progress:
        keys = sorted({k for p in progress for k in (p["ms"] or {})})
        print("Spark durations per micro-batch (ms): batch rows " + " ".join(keys))
        for p in progress:
            print(f"  {p['batch']:5d} {p['rows']:4d} " + " ".join(f"{(p['ms'] or {}).get(k, 0)}" for k in keys))
    (args.out / "timeline.json").write_text(json.dumps({
        "samples": [[t, {str(p): c for p, c in per.items()}, busy] for t, per, busy in samples],
        "kinds": {str(p): k for p, k in kinds.items()}, "lines": lines, "progress": progress}))
    plot(args.out / "timeline.png", samples, kinds, [t for t, _, _ in batches])
    print(f"wrote {args.out / 'timeline.png'} and timeline.json")
    return 0


def plot(path: Path, samples, kinds, line_times, bin_s: float = 0.1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = samples[0][0]
    edges = np.arange(start, samples[-1][0], bin_s)
    times = np.array([s[0] for s in samples])
    order = sorted({k for k in kinds.values()})
    rows = {k: [] for k in order}
    for a, b in zip(edges[:-1], edges[1:]):
        i, j = int(np.searchsorted(times, a)), int(np.searchsorted(times, b))
        j = min(j, len(samples) - 1)
        dt = max(samples[j][0] - samples[i][0], 1e-9)
        use = dict.fromkeys(order, 0.0)
        for pid, cpu in samples[j][1].items():
            if pid in samples[i][1]:
                use[kinds[pid]] += (cpu - samples[i][1][pid]) / dt
        for k in order:
            rows[k].append(use[k])
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.stackplot(edges[:-1] - start, *[rows[k] for k in order], labels=order, step="post")
    for t in line_times:
        ax.axvline(t - start, color="black", lw=0.3)
    ax.set_xlabel("seconds since the consumer started")
    ax.set_ylabel("cores")
    ax.set_title("chestct predict: CPU by process (a line per prediction line)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
