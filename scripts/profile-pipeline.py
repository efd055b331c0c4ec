#!/usr/bin/env python
"""Where the pipeline's time goes: `make demo`'s run, with CPU per process and py-spy profiles.

Runs ``scripts/demo.py`` (producer -> ``chestct train`` -> producer on test -> ``chestct
predict``, at the defaults) and, meanwhile:

- samples the CPU seconds of every process it starts (producer, driver, JVM, Spark's Python
  workers) with psutil until they exit;
- after ``--warmup`` seconds (Spark started, the train stream under way), records the
  producer, the driver and the busiest Python worker with py-spy for ``--seconds``.

It prints, and writes under ``--out``/profile: the CPU seconds per kind of process
(``cpu.json``, ``cpu_by_process.png``) and each profile's frames with the most samples of
their own (``profile.md``; the raw py-spy stacks are beside it). The demo itself runs in
``profile/run`` (emptied first) and logs to ``profile/demo.log``. py-spy samples waiting
threads too: ``recv``, ``poll``, ``select`` and the like are waits, not work. py-spy needs the right to
ptrace the processes (root, or ``kernel.yama.ptrace_scope`` 0).

    python scripts/profile-pipeline.py --data ../shared/data/chest-ctscan
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
#: Process kinds, told by their command line (first match wins).
KINDS = (("jvm", "java"), ("python worker", "pyspark.daemon"), ("python worker", "pyspark.sql.worker"),
         ("source planner", "python_streaming_source_runner"), ("producer", "-m producer"),
         ("driver", "-m consumer"))


def kind_of(cmdline: str) -> str | None:
    return next((kind for kind, marker in KINDS if marker in cmdline), None)


def descendants(root: int) -> dict[int, tuple[float, str]]:
    """CPU seconds and command line of ``root``'s live descendants."""
    out = {}
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for child in children:
        try:  # Spark's short-lived processes come and go between two reads
            times = child.cpu_times()
            out[child.pid] = (times.user + times.system, " ".join(child.cmdline()))
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return out


def own_frames(raw: Path, top: int) -> tuple[int, list[tuple[str, int]]]:
    """Total samples and the ``top`` frames by samples of their own, from py-spy's raw output."""
    own: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    return total, own.most_common(top)


def py_spy() -> str | None:
    """py-spy beside this interpreter (a venv's bin, not always on PATH), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def record(pid: int, seconds: float, raw: Path) -> subprocess.Popen:
    return subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--duration",
                             str(int(seconds)), "--rate", "100", "--native", "--format", "raw", "-o", str(raw)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def plot(cpu: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(cpu, key=cpu.get)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(kinds) + 1.2))
    ax.barh(kinds, [cpu[k] for k in kinds], color="tab:blue")
    ax.set_xlabel("CPU seconds")
    ax.set_title("make demo: CPU by process kind")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("CHESTCT_DATA"),
                    help="the dataset (default: CHESTCT_DATA)")
    ap.add_argument("--out", type=Path, default=ROOT / "demo-out")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the profiles start")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds each profile records")
    ap.add_argument("--top", type=int, default=15, help="frames listed per profile")
    args = ap.parse_args(argv)
    if args.data is None or not (Path(args.data) / "train").is_dir():
        ap.error("--data (or CHESTCT_DATA) must be the dataset folder with train/ and test/")
    if py_spy() is None:
        ap.error("py-spy is not installed (pip install py-spy; it is in the dev extras)")
    if args.warmup < 0 or args.seconds < 1 or args.top < 1:
        ap.error("--warmup must be >= 0, --seconds >= 1 and --top >= 1")
    folder = args.out.resolve() / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "demo.log").open("w")
    # A run of its own: the demo resumes from an earlier run's checkpoints and would stream nothing.
    run = folder / "run"
    shutil.rmtree(run, ignore_errors=True)
    demo = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "demo.py"), "--data", str(args.data),
                             "--out", str(run)], stdout=log, stderr=subprocess.STDOUT)
    seen: dict[int, tuple[float, str]] = {}
    spies: dict[str, tuple[subprocess.Popen, Path]] = {}
    started = time.monotonic()
    print(f"demo running; profiles start after {args.warmup:.0f} s", flush=True)
    while demo.poll() is None:
        for pid, (cpu, cmdline) in descendants(demo.pid).items():
            before_cpu, before_cmd = seen.get(pid, (0.0, ""))
            # A process's command line reads empty once it has exited: keep the first one.
            seen[pid] = (max(cpu, before_cpu), before_cmd or cmdline)
        if not spies and time.monotonic() - started >= args.warmup:
            live = descendants(demo.pid)
            for kind in ("producer", "driver", "python worker"):
                pids = [(cpu, pid) for pid, (cpu, cmd) in live.items() if kind_of(cmd) == kind]
                if pids:
                    raw = folder / f"{kind.replace(' ', '-')}.pyspy.txt"
                    spies[kind] = (record(max(pids)[1], args.seconds, raw), raw)
            print(f"profiling {', '.join(spies) or 'nothing (no process found)'} for {args.seconds:.0f} s",
                  flush=True)
        time.sleep(0.3)
    cpu: dict[str, float] = collections.defaultdict(float)
    for total, cmdline in seen.values():
        cpu[kind_of(cmdline) or "other"] += total
    cpu = dict(sorted(cpu.items(), key=lambda kv: -kv[1]))
    (folder / "cpu.json").write_text(json.dumps({"wall_seconds": round(time.monotonic() - started, 1),
                                                 "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()}},
                                                indent=1) + "\n")
    plot(cpu, folder / "cpu_by_process.png")
    lines = [f"# Where `make demo`'s time goes ({time.monotonic() - started:.0f} s wall)", "",
             "| process kind | CPU seconds |", "|---|---|", *(f"| {k} | {v:.1f} |" for k, v in cpu.items()), ""]
    for kind, (spy, raw) in spies.items():
        spy.wait()
        if not raw.exists():
            lines += [f"## {kind}: no profile ({(spy.stderr.read() or '').strip()[-300:]})", ""]
            continue
        total, frames = own_frames(raw, args.top)
        lines += [f"## {kind}: {total} samples, frames by samples of their own", "",
                  "| samples | share | frame |", "|---|---|---|",
                  *(f"| {n} | {n / max(total, 1):.0%} | `{frame[:110]}` |" for frame, n in frames), ""]
    (folder / "profile.md").write_text("\n".join(lines))
    print("\n".join(lines))
    log.close()
    print(f"written: {folder} (the demo's own output: demo.log)")
    return demo.returncode


if __name__ == "__main__":
    sys.exit(main())
