"""Spark start-up in a fresh process, with and without the driver's class-data archive.

Each round is one fresh ``python`` that builds the consumer's session (``local[1]``), runs
one job and stops: what every ``chestct`` command pays before its first micro-batch. The
archive is ``consumer.jvm_classes``'s (``make setup`` writes it). The two are measured in
alternating rounds of one run, so the ratio holds on a loaded machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from consumer import jvm_classes
from quick import QUICK

ROUNDS = 1 if QUICK else 5
#: The archive's start must cost at most this fraction of the plain start (full runs only).
TARGET_RATIO = 0.85
START = ("from consumer.spark import build_session\n"
         "spark, _ = build_session('local[1]', app_name='bench-jvm-start')\n"
         "assert spark.range(100).count() == 100\n"
         "spark.stop()\n")


def start_seconds(archive: bool) -> float:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    if not archive:
        env[jvm_classes.ENV] = "off"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", START], env=env, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def test_session_start_with_the_class_archive_against_without(benchmark):
    path = jvm_classes.archive_path()
    if path is None or not path.is_file():
        pytest.skip("no JVM class archive: run `python -m consumer.jvm_classes` (make setup does)")
    times: dict[bool, list[float]] = {True: [], False: []}

    def both() -> None:
        for archive in (False, True):
            times[archive].append(start_seconds(archive))

    benchmark.group = "Spark session start (fresh process)"
    benchmark.extra_info["impl"] = "with and without the class archive, alternating"
    benchmark.pedantic(both, rounds=ROUNDS, iterations=1)
    best = {k: min(v) for k, v in times.items()}
    ratio = best[True] / best[False]
    benchmark.extra_info.update(with_archive_s=round(best[True], 2), without_s=round(best[False], 2),
                                ratio=round(ratio, 3))
    print(f"\nsession start, best of {ROUNDS}: {best[False]:.1f} s plain, {best[True]:.1f} s with the "
          f"archive ({ratio:.2f}x)")
    if not QUICK:
        assert ratio <= TARGET_RATIO, f"the class archive's start is {ratio:.2f}x the plain start"
