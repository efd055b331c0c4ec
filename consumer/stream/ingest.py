"""Stream a split into its features table: a checkpointed, exactly-once Parquet query."""
from __future__ import annotations

import time
from typing import Any

from .options import featured_options
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
    # The source's reader runs the feature stage on each batch it reads: one Python worker
    # per task, and the pixels never cross into the JVM.
    featured = (spark.readStream.format("chestct")
                .options(**source_options, **featured_options(config, backend, n_threads)).load())
    writer = (featured.select(*TABLE_COLUMNS).writeStream.format("parquet")
              .option("checkpointLocation", paths.checkpoint)
              .queryName(f"chestct-ingest-{int(time.time())}"))
    writer = writer.trigger(availableNow=True) if finite else writer.trigger(processingTime="0 seconds")
    return writer.start(paths.table)
