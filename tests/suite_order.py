"""Test order for `make test`: the long tests spread over the xdist workers from the start.

pytest-xdist's ``worksteal`` mode hands each worker one contiguous share of the collected
order, and idle workers later steal from the *tail* of the others' shares. So the order
decides the schedule: with every long test at the front, they all landed in the first
worker's share and ran one after another while the others finished early. This module
orders the collection so that each worker's share starts with its own long tests, chosen
longest first onto the least-loaded share (the LPT rule), and ends with short tests that
are cheap to steal.

Costs come from ``tests/durations.json``, written by ``pytest --store-durations`` (the
seconds of the last full run). Only the order uses them; no test depends on a figure.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

#: Where the measured test durations live (one JSON object: node id -> seconds).
DURATIONS_FILE = Path(__file__).with_name("durations.json")
#: Seconds assumed for a test missing from the file: a marked-slow test, and any other.
UNKNOWN_SLOW_SECONDS = 30.0
UNKNOWN_SECONDS = 0.2
#: Tests under this many seconds are not worth storing: they fill the shares' tails.
STORED_MIN_SECONDS = 1.0


def share_sizes(count: int, workers: int) -> list[int]:
    """How many tests each worker gets at first: xdist worksteal's initial split."""
    sizes, remaining = [], count
    for i in range(workers):
        size = remaining // (workers - i)
        sizes.append(size)
        remaining -= size
    return sizes


def schedule(costs: Sequence[float], workers: int, groups: Sequence[str | None] | None = None) -> list[int]:
    """Order ``range(len(costs))`` so each worker's initial share carries a fair load.

    Parameters
    ----------
    costs : sequence of float
        Expected seconds of each test, in collection order.
    workers : int
        The number of xdist workers (1 for a plain run).
    groups : sequence of str or None, optional
        A key per test: the tests of one key go to one share, as one unit placed like a
        long test (e.g. those sharing a per-worker Spark session, which each worker would
        otherwise start for itself). None: no group.

    Returns
    -------
    list of int
        A permutation of the indices. Share ``k`` (of :func:`share_sizes`) starts with its
        long tests, longest first; its short tests keep their collection order, so that
        module fixtures are set up as rarely as possible.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    sizes = share_sizes(len(costs), workers)
    groups = list(groups) if groups is not None else [None] * len(costs)
    if len(groups) != len(costs):
        raise ValueError(f"{len(groups)} group keys for {len(costs)} tests")
    # Units: a group's tests together (longest first), or one long test on its own.
    units: dict[object, list[int]] = {}
    for i, (cost, key) in enumerate(zip(costs, groups)):
        if key is not None:
            units.setdefault(("group", key), []).append(i)
        elif cost >= STORED_MIN_SECONDS:
            units[("test", i)] = [i]
    for members in units.values():
        members.sort(key=lambda i: (-costs[i], i))
    shares: list[list[int]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for members in sorted(units.values(), key=lambda m: (-sum(costs[i] for i in m), m[0])):
        # The least-loaded share with room; a group larger than any share's room goes where
        # most of it fits, and its remainder spills to the next shares.
        fits = [k for k in range(workers) if len(shares[k]) + len(members) <= sizes[k]]
        k = (min(fits, key=lambda k: (loads[k], k)) if fits
             else max(range(workers), key=lambda k: (sizes[k] - len(shares[k]), -k)))
        for index in members:
            while len(shares[k]) >= sizes[k]:
                k = (k + 1) % workers
            shares[k].append(index)
            loads[k] += costs[index]
    for share in shares:
        share.sort(key=lambda i: (-costs[i], i))
    placed = {i for share in shares for i in share}
    # The short tests fill the remaining places in collection order, so a module's tests
    # mostly stay on one worker and its fixtures are built once.
    short = iter(i for i in range(len(costs)) if i not in placed)
    order: list[int] = []
    for k, share in enumerate(shares):
        order.extend(share)
        order.extend(next(short) for _ in range(sizes[k] - len(share)))
    return order


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The stored durations, or none when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def store_durations(durations: dict[str, float], path: Path = DURATIONS_FILE) -> None:
    """Write the durations of the tests that took at least :data:`STORED_MIN_SECONDS`."""
    kept = {k: round(v, 1) for k, v in sorted(durations.items()) if v >= STORED_MIN_SECONDS}
    path.write_text(json.dumps(kept, indent=1) + "\n")
