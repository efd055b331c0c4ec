"""The ``chestct`` Spark streaming data source: producer batches become rows, one per image.

``spark.readStream.format("chestct").option("port", "6100").load()`` (after
:func:`consumer.spark.register_source`). See docs/consumer.md for the options and the
exactly-once design; in short:

* Offsets are ``{"stream_id": <producer content hash>, "seq": <next batch seq>}``; a
  micro-batch from ``{"seq": a}`` to ``{"seq": b}`` holds batches ``a .. b-1``.
* The driver only learns the stream's ``hello`` (size, classes, stream id); no pixels go
  through it. Each input partition subscribes to its own seq range ``[from_seq, to_seq)``.
  The producer is deterministic, so reading a range again (a retried task, a restart from
  the checkpoint) returns byte-identical batches; the stream id is checked on every
  connection, so a producer serving other data is refused instead of replayed.
* A bad batch (malformed frame, CRC mismatch, wrong shape, a connection cut inside it
  more than ``maxRetries`` times) fails the query naming the batch (``onBadBatch=fail``,
  the default) or is skipped and counted: it becomes one marker row with ``image_id``
  null and ``error`` set (``onBadBatch=skip``).
"""
from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping, Sequence

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxFiles,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from .client import StreamMismatch, fetch_hello
from .options import SourceOptions
from .reader import FEATURED_SCHEMA, SCHEMA, BatchRange, read_range, settle_worker

log = logging.getLogger("chestct.source")

SOURCE_NAME = "chestct"


def _offset(stream_id: str, seq: int) -> dict:
    return {"stream_id": stream_id, "seq": int(seq)}


def _offset_seq(offset: Mapping[str, Any], stream_id: str) -> int:
    """The seq of a (possibly checkpointed) offset, refusing one of another stream."""
    if offset.get("stream_id") != stream_id:
        raise StreamMismatch(
            f"the checkpoint's offsets belong to producer stream {offset.get('stream_id')!r} but "
            f"the producer now serves stream {stream_id!r}: a different split, image size or "
            f"dataset. Use a new checkpoint (work dir) for a new stream.")
    return int(offset["seq"])


def plan_ranges(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """Split seqs ``[start, end)`` into at most ``parts`` consecutive, near-equal ranges.

    A Spark task costs a fixed overhead (Python workers, a connection, a Parquet file),
    so a micro-batch is read by about as many tasks as there are task slots rather than
    one task per producer batch.
    """
    count = end - start
    parts = max(1, min(parts, count))
    if count <= 0:
        return []
    base, extra = divmod(count, parts)
    ranges, a = [], start
    for i in range(parts):
        b = a + base + (1 if i < extra else 0)
        ranges.append((a, b))
        a = b
    return ranges


def batches_allowed(limit: ReadLimit, batch_size: int, default_batches: int) -> int | None:
    """How many producer batches a read limit admits (None = no limit)."""
    if isinstance(limit, ReadAllAvailable):
        return None
    if isinstance(limit, ReadMaxRows):
        # Rows are images; a batch is never split, but always admit at least one.
        return max(1, int(limit.max_rows) // batch_size)
    if isinstance(limit, ReadMaxFiles):
        return max(1, int(limit.max_files))
    # Limits that make no sense here (min rows, bytes): fall back to the configured cap.
    return default_batches


class ChestCTStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans micro-batches as seq ranges; partitions subscribe to the producer themselves."""

    def __init__(self, options: SourceOptions):
        self.options = options
        self._hello: dict | None = None
        self._available_now_end: int | None = None

    # -- driver side ---------------------------------------------------------------
    def hello(self) -> dict:
        """The producer's hello, fetched once per query (with connect retries)."""
        if self._hello is None:
            self._hello = fetch_hello(self.options.connect, logger=log)
        return self._hello

    def _last_seq(self) -> int | None:
        """One past the last batch this query may read (None: endless)."""
        hello = self.hello()
        bounds = [b for b in (hello.get("total_batches"), self.options.ending_seq,
                              self._available_now_end) if b is not None]
        return min(bounds) if bounds else None

    def initialOffset(self) -> dict:
        return _offset(self.hello()["stream_id"], self.options.starting_seq)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.options.max_batches_per_trigger * self.hello()["batch_size"])

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        hello = self.hello()
        first = _offset_seq(start, hello["stream_id"])
        allowed = batches_allowed(limit, hello["batch_size"], self.options.max_batches_per_trigger)
        last = self._last_seq()
        if last is None:
            # An endless producer makes batches on demand: any seq is "available", so an
            # unlimited read is capped at maxBatchesPerTrigger to keep micro-batches finite.
            end = first + (allowed or self.options.max_batches_per_trigger)
        else:
            end = max(first, last if allowed is None else min(first + allowed, last))
        return _offset(hello["stream_id"], end)

    def reportLatestOffset(self) -> dict | None:
        last = self._last_seq()
        return None if last is None else _offset(self.hello()["stream_id"], last)

    def prepareForTriggerAvailableNow(self) -> None:
        hello = self.hello()
        bounds = [b for b in (hello.get("total_batches"), self.options.ending_seq) if b is not None]
        if not bounds:
            raise ValueError("Trigger.AvailableNow needs a finite stream: this producer is endless "
                             "(--endless); set the chestct option 'endingSeq' or use a "
                             "processing-time trigger")
        self._available_now_end = min(bounds)

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        hello = self.hello()
        first = _offset_seq(start, hello["stream_id"])
        stop = _offset_seq(end, hello["stream_id"])
        return [BatchRange(hello["stream_id"], a, b, hello["classes"], hello["image_shape"])
                for a, b in plan_ranges(first, stop, self.options.num_partitions)]

    def commit(self, end: dict) -> None:
        # Nothing to release: the producer keeps no per-consumer state to acknowledge.
        return None

    # -- executor side -------------------------------------------------------------
    def read(self, partition: InputPartition) -> Iterator[Any]:
        assert isinstance(partition, BatchRange), partition
        batches = read_range(self.options, partition)
        if self.options.features is not None:
            from ..features.stage import transform_batch
        settle_worker()  # after this task's imports: they are what it freezes
        if self.options.features is None:
            return batches
        opts = self.options
        return (transform_batch(b, opts.features, opts.feature_backend, opts.feature_threads) for b in batches)


class ChestCTDataSource(DataSource):
    """Spark data source ``chestct``: the chestct producer's stream as rows of images."""

    def __init__(self, options: Mapping[str, str]):
        super().__init__(options)
        # Parse now: a bad option fails at .load() with its name, not later in a worker.
        self.parsed = SourceOptions.parse(dict(options))

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return SCHEMA if self.parsed.features is None else FEATURED_SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return ChestCTStreamReader(self.parsed)
