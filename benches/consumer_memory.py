"""Memory of a consumer process tree: the driver's Python, its JVM, Spark's Python workers.

Shared by the benchmarks that report the consumer's memory (pipeline, stream, endless train).
"""
from __future__ import annotations

from typing import Collection

import psutil

#: The parts of :func:`consumer_mib`'s result, in MiB of resident memory (RSS).
PARTS = ("driver_python", "jvm", "python_workers")


def consumer_mib(driver: psutil.Process, *, exclude: Collection[int] = (), pss: bool = False) -> dict[str, float] | None:
    """RSS (MiB) of ``driver`` and, by kind, of its descendants; None once the driver is gone.

    Parameters
    ----------
    exclude : pids
        Descendants to leave out, with their children (e.g. a producer the bench started).
    pss : bool
        Also give ``total_pss``: the whole tree's proportional set size. An RSS sum counts
        the pages Spark's forked Python workers share once per process; PSS divides them.
    """
    try:
        out = dict.fromkeys(PARTS, 0.0)
        out["driver_python"] = driver.memory_info().rss / 2**20
        total_pss = _pss_mib(driver) if pss else 0.0
        children = driver.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:  # Spark's short-lived Python workers come and go between two reads
            if child.pid in exclude or child.ppid() in exclude:
                continue
            name, rss = child.name(), child.memory_info().rss / 2**20
            child_pss = _pss_mib(child) if pss else 0.0
        except psutil.NoSuchProcess:
            continue
        if name.startswith("java"):
            out["jvm"] += rss
        elif name.startswith("python"):
            out["python_workers"] += rss
        else:
            continue
        total_pss += child_pss
    out["total"] = sum(out[p] for p in PARTS)
    if pss:
        out["total_pss"] = total_pss
    return out


def _pss_mib(proc: psutil.Process) -> float:
    try:
        return proc.memory_full_info().pss / 2**20
    except (psutil.AccessDenied, AttributeError):  # no smaps here: RSS is the upper bound
        return proc.memory_info().rss / 2**20
