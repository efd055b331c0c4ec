"""Stream a split into its features table: a checkpointed, exactly-once Parquet query."""
from __future__ import annotations

import time
from typing import Any

from ..features.stage import add_features
from .table import TABLE_COLUMNS, StreamPaths


def start_ingest(spark, *, source_options: dict[str, str], config: Any, backend: str,
                 n_threads: int, paths: StreamPaths, finite: bool):
    """Start the query source -> feature stage -> Parquet table, checkpointed.

    Parameters
    ----------
    source_options : dict of str
        Options of the ``chestct`` source (host, port, onBadBatch ...).
    finite : bool
        Finite stream: ``Trigger.AvailableNow`` (the query stops by itself after the
        producer's last batch). Endless: run micro-batches back to back until stopped.

    Returns
    -------
    pyspark.sql.streaming.StreamingQuery
    """
    stream = spark.readStream.format("chestct").options(**source_options).load()
    featured = add_features(stream, config, backend=backend, n_threads=n_threads)
    writer = (featured.select(*TABLE_COLUMNS).writeStream.format("parquet")
              .option("checkpointLocation", paths.checkpoint)
              .queryName(f"chestct-ingest-{int(time.time())}"))
    writer = writer.trigger(availableNow=True) if finite else writer.trigger(processingTime="0 seconds")
    return writer.start(paths.table)
