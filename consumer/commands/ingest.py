"""``chestct ingest``: only stream a split into its features table."""
from __future__ import annotations

import argparse

from .common import Run, feature_config, fetch_stream_hello, ingest_stream, prepare_table, table_summary


def cmd_ingest(args: argparse.Namespace, run: Run) -> int:
    from ..features import backend_module
    from ..preflight import check_stream

    config = feature_config(args)
    backend_module(args.backend)
    hello = fetch_stream_hello(args)
    check_stream(hello, config)
    run.start_spark()
    paths = prepare_table(run, hello, config)
    ingest_stream(run, hello, config, paths)
    _, frame, files = table_summary(run, paths)
    print(f"table {paths.table}: {len(frame)} images, {len(files)} files skipped by the producer")
    return 0
