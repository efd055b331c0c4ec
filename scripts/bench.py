#!/usr/bin/env python
"""`make bench`: run benches/ once and print medians and speed-up ratios from that one run.

Each benchmark sets ``benchmark.group`` (what is measured, e.g. "hog 128px") and
``benchmark.extra_info["impl"]`` (who measured it: featrs, skimage, opencv, ...). Ratios are
``median(other) / median(featrs)`` within a group, so > 1 means featrs is faster. Any
numeric ``extra_info`` (images/s, bytes per image, peak memory) is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ("featrs", "featrs-2t", "producer", "rust")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def table(bench_json: dict) -> str:
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in bench_json["benchmarks"]:
        impl = b.get("extra_info", {}).get("impl", b["name"])
        groups[b["group"] or b["name"]][impl] = b
    lines = [f"machine: {machine()}", "",
             "| group | impl | median | ratio vs baseline | extra |", "|---|---|---|---|---|"]
    for group in sorted(groups):
        impls = groups[group]
        base = next((impls[k] for k in BASELINE if k in impls), None)
        for impl, b in sorted(impls.items(), key=lambda kv: kv[1]["stats"]["median"]):
            med = b["stats"]["median"]
            ratio = f"{med / base['stats']['median']:.2f}x" if base is not None else ""
            extra = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in b.get("extra_info", {}).items()
                              if k != "impl" and isinstance(v, (int, float)))
            lines.append(f"| {group} | {impl} | {fmt_time(med)} | {ratio} | {extra} |")
    return "\n".join(lines)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["benches"], help="bench files or folders")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    ap.add_argument("--json", type=Path, default=None, help="keep pytest-benchmark's JSON here")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    # One thread per kernel: the targets are single-thread ratios (batch benches set their own).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.json or Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", *args.paths, "-p", "no:cacheprovider", "-q",
               "--benchmark-only", f"--benchmark-json={out}", "-o", "testpaths=benches",
               # The bench files are bench_*.py: without this pytest collects none of them.
               "-o", "python_files=bench_*.py"]
        if args.k:
            cmd += ["-k", args.k]
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        if not out.exists():
            print("no benchmark results written", file=sys.stderr)
            return rc or 1
        print()
        print(table(json.loads(out.read_text())))
    return rc


if __name__ == "__main__":
    sys.exit(main())
