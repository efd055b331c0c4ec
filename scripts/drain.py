#!/usr/bin/env python
"""Read one producer's whole stream as fast as it comes and say how long it took.

A client that only receives and checks frames (no features, no Spark), for measuring the
producer alone, e.g. its CPU seconds on a stream:

    scripts/cpu-seconds.sh .venv/bin/python -m producer -d DATA --port 6100 &
    python scripts/drain.py 6100
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from consumer.stream.client import ConnectConfig, open_connection  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--read-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    with open_connection(ConnectConfig(host=args.host, port=args.port, read_timeout=args.read_timeout)) as conn:
        conn.subscribe(0)
        t0, batches, images = time.perf_counter(), 0, 0
        while (msg := conn.recv()) is not None and msg["type"] != "end":
            if msg["type"] == "error":
                raise SystemExit(f"producer error [{msg['code']}]: {msg['reason']}")
            if msg["type"] == "batch":
                batches += 1
                images += len(msg["labels"])
    print(f"{batches} batches, {images} images in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
