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
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxFiles,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

from consumer.client import (
    ConnectConfig,
    ProducerError,
    StreamMismatch,
    backoff_delays,
    fetch_hello,
    open_connection,
)
from producer import wire

log = logging.getLogger("chestct.source")

SOURCE_NAME = "chestct"

#: Rows of the source, one per image (or one marker row per skipped batch).
SCHEMA = ("seq long, epoch long, image_id string, label int, label_name string, "
          "height int, width int, channels int, pixels binary, error string")

BAD_BATCH_POLICIES = ("fail", "skip")


class OptionError(ValueError):
    """A ``chestct`` source option is missing or has a bad value."""


class BadBatch(RuntimeError):
    """A batch failed its checks and ``onBadBatch`` is ``fail``."""


def _lookup(options: Mapping[str, str], name: str) -> str | None:
    # Spark hands options over in a case-insensitive map; plain dicts are matched here too.
    lowered = name.lower()
    for key, value in options.items():
        if key.lower() == lowered:
            return value
    return None


def _parse(options: Mapping[str, str], name: str, kind: type, default: Any, *,
           minimum: float | None = None) -> Any:
    raw = _lookup(options, name)
    if raw is None:
        return default
    text = str(raw).strip()
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise OptionError(f"chestct option {name!r} must be {noun}, got {raw!r}") from None
    if kind is float and not math.isfinite(value):
        raise OptionError(f"chestct option {name!r} must be finite, got {raw!r}")
    if minimum is not None and value < minimum:
        raise OptionError(f"chestct option {name!r} must be >= {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class SourceOptions:
    """The source's options, parsed once from Spark's string options.

    Attributes mirror the option names in docs/consumer.md ("Source options").
    """

    connect: ConnectConfig = field(default_factory=ConnectConfig)
    max_batches_per_trigger: int = 8
    num_partitions: int = 2
    on_bad_batch: str = "fail"
    max_retries: int = 3
    starting_seq: int = 0
    ending_seq: int | None = None

    KNOWN = ("host", "port", "connectTimeout", "readTimeout", "maxFrameBytes",
             "maxBatchesPerTrigger", "numPartitions", "onBadBatch", "maxRetries",
             "startingSeq", "endingSeq")

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> "SourceOptions":
        """Parse and validate Spark's string options.

        Raises
        ------
        OptionError
            Naming the option, for an unknown option or a bad value.
        """
        known = {name.lower(): name for name in cls.KNOWN}
        for key in options:
            if key.lower() not in known:
                raise OptionError(f"unknown chestct option {key!r}; known options: "
                                  f"{', '.join(cls.KNOWN)}")
        host = (_lookup(options, "host") or "127.0.0.1").strip()
        if not host:
            raise OptionError("chestct option 'host' must not be empty")
        port = _parse(options, "port", int, 6100, minimum=1)
        if port > 65535:
            raise OptionError(f"chestct option 'port' must be <= 65535, got {port}")
        connect = ConnectConfig(
            host=host,
            port=port,
            connect_timeout=_parse(options, "connectTimeout", float, 60.0, minimum=0.1),
            read_timeout=_parse(options, "readTimeout", float, 120.0, minimum=0.1),
            max_frame_bytes=_parse(options, "maxFrameBytes", int, wire.DEFAULT_MAX_FRAME_BYTES,
                                   minimum=1024),
        )
        policy = (_lookup(options, "onBadBatch") or "fail").strip().lower()
        if policy not in BAD_BATCH_POLICIES:
            raise OptionError(f"chestct option 'onBadBatch' must be one of "
                              f"{'|'.join(BAD_BATCH_POLICIES)}, got {_lookup(options, 'onBadBatch')!r}")
        starting = _parse(options, "startingSeq", int, 0, minimum=0)
        ending = _parse(options, "endingSeq", int, None, minimum=0)
        if ending is not None and ending < starting:
            raise OptionError(f"chestct option 'endingSeq' ({ending}) must be >= "
                              f"'startingSeq' ({starting})")
        return cls(
            connect=connect,
            max_batches_per_trigger=_parse(options, "maxBatchesPerTrigger", int, 8, minimum=1),
            num_partitions=_parse(options, "numPartitions", int, 2, minimum=1),
            on_bad_batch=policy,
            max_retries=_parse(options, "maxRetries", int, 3, minimum=0),
            starting_seq=starting,
            ending_seq=ending,
        )


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


class BatchRange(InputPartition):
    """Producer batches ``from_seq .. to_seq-1`` of one stream, read by one Spark task."""

    def __init__(self, stream_id: str, from_seq: int, to_seq: int,
                 classes: Sequence[str], image_shape: Sequence[int]):
        super().__init__((from_seq, to_seq))
        self.stream_id = stream_id
        self.from_seq = from_seq
        self.to_seq = to_seq
        self.classes = list(classes)
        self.image_shape = list(image_shape)

    def __repr__(self) -> str:
        return f"BatchRange(seq {self.from_seq}..{self.to_seq - 1} of {self.stream_id})"


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
        return read_range(self.options, partition)


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
        return SCHEMA

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        return ChestCTStreamReader(self.parsed)


# ---------------------------------------------------------------------------- reading


def arrow_schema():
    """The pyarrow schema matching :data:`SCHEMA` (what Spark checks record batches against)."""
    import pyarrow as pa

    return pa.schema([
        ("seq", pa.int64()), ("epoch", pa.int64()), ("image_id", pa.string()),
        ("label", pa.int32()), ("label_name", pa.string()), ("height", pa.int32()),
        ("width", pa.int32()), ("channels", pa.int32()), ("pixels", pa.binary()),
        ("error", pa.string()),
    ])


def check_batch(msg: dict, classes: Sequence[str], image_shape: Sequence[int]) -> Any:
    """Validate a batch message against the stream's hello and decode its pixels.

    Returns
    -------
    numpy.ndarray
        ``uint8`` pixels of shape ``(N, H, W, C)``.

    Raises
    ------
    producer.wire.ChecksumMismatch, producer.wire.MalformedFrame
        CRC or byte count wrong, bad base64.
    BadBatch
        Image shape differs from the hello's, or a label is not a class index.
    """
    shape = list(msg["shape"])
    if shape[1:] != list(image_shape):
        raise BadBatch(f"images of shape {shape[1:]} but the stream's hello announced "
                       f"{list(image_shape)}")
    bad_labels = [label for label in msg["labels"] if label >= len(classes)]
    if bad_labels:
        raise BadBatch(f"label {bad_labels[0]} is not a class index (stream has "
                       f"{len(classes)} classes)")
    return wire.batch_pixels(msg)


def batch_to_arrow(msg: dict, pixels: Any, classes: Sequence[str]):
    """One validated batch as a record batch of :func:`arrow_schema`, one row per image."""
    import numpy as np
    import pyarrow as pa

    n, height, width, channels = pixels.shape
    per_image = height * width * channels
    offsets = np.arange(0, (n + 1) * per_image, per_image, dtype=np.int32) if n else np.zeros(1, np.int32)
    pixel_col = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                       pa.py_buffer(np.ascontiguousarray(pixels))])
    labels = msg["labels"]
    return pa.RecordBatch.from_arrays([
        pa.array([msg["seq"]] * n, pa.int64()),
        pa.array([msg["epoch"]] * n, pa.int64()),
        pa.array(msg["ids"], pa.string()),
        pa.array(labels, pa.int32()),
        pa.array([classes[label] for label in labels], pa.string()),
        pa.array([height] * n, pa.int32()),
        pa.array([width] * n, pa.int32()),
        pa.array([channels] * n, pa.int32()),
        pixel_col,
        pa.nulls(n, pa.string()),
    ], schema=arrow_schema())


def marker_batch(seq: int, epoch: int | None, reason: str):
    """The one row standing for a skipped batch: ``image_id`` null, ``error`` = reason."""
    import pyarrow as pa

    values = {name: pa.nulls(1, typ) for name, typ in zip(arrow_schema().names, arrow_schema().types)}
    values["seq"] = pa.array([seq], pa.int64())
    values["epoch"] = pa.array([epoch], pa.int64())
    values["error"] = pa.array([reason], pa.string())
    return pa.RecordBatch.from_arrays(list(values.values()), schema=arrow_schema())


# Connection problems inside a range: reconnect and resubscribe from the batch in flight.
_CONNECTION_LOST = (ConnectionError, TimeoutError, wire.TruncatedFrame)
# Frame problems: the connection is out of sync, but it is this batch's frame that is bad.
_BAD_FRAME = (wire.MalformedFrame, wire.FrameTooLarge)


def read_range(options: SourceOptions, part: BatchRange) -> Iterator[Any]:
    """Read batches ``part.from_seq .. part.to_seq-1`` from the producer as record batches.

    Reconnects (with backoff, from the batch in flight) when the connection is lost, at
    most ``options.max_retries`` times per batch; then, like a malformed frame, a CRC
    mismatch or a wrong shape, the batch is bad and handled per ``options.on_bad_batch``.
    Never waits longer than ``readTimeout`` for a frame nor ``connectTimeout`` for the
    producer. A producer with another stream id, an ``error`` message, an early ``end``
    or a batch out of order fails the task whatever the policy: those are not one bad
    batch but a wrong stream.
    """
    next_seq = part.from_seq
    lost = 0
    delays = backoff_delays(options.connect.retry_initial, options.connect.retry_max)
    where = f"producer {options.connect.address}, stream {part.stream_id}"

    def bad(seq: int, epoch: int | None, reason: str):
        message = f"batch {seq} is bad ({where}): {reason}"
        if options.on_bad_batch == "fail":
            raise BadBatch(message + " [set option onBadBatch=skip to skip and count bad batches]")
        log.warning("skipping %s", message)
        return marker_batch(seq, epoch, reason)

    while next_seq < part.to_seq:
        conn = open_connection(options.connect, logger=log)
        with conn:
            if conn.hello["stream_id"] != part.stream_id:
                raise StreamMismatch(
                    f"batches {next_seq}..{part.to_seq - 1}: the producer at "
                    f"{options.connect.address} now serves stream {conn.hello['stream_id']!r}, "
                    f"not {part.stream_id!r} that these offsets were planned on; refusing to "
                    f"read (a replay must return the same batches)")
            conn.subscribe(next_seq, part.to_seq)
            while next_seq < part.to_seq:
                try:
                    msg = conn.recv()
                    if msg is None:
                        raise ConnectionError("the producer closed the connection")
                except _CONNECTION_LOST as exc:
                    lost += 1
                    if lost > options.max_retries:
                        yield bad(next_seq, None, f"connection lost {lost} times while reading it "
                                                  f"(last: {exc})")
                        next_seq += 1
                        lost = 0
                    else:
                        pause = next(delays)
                        log.warning("batch %d: connection to %s lost (%s); resubscribing in %.1fs "
                                    "(retry %d of %d)", next_seq, options.connect.address, exc,
                                    pause, lost, options.max_retries)
                        time.sleep(pause)
                    break
                except _BAD_FRAME as exc:
                    yield bad(next_seq, None, f"unreadable frame: {exc}")
                    next_seq += 1
                    break  # the connection is out of sync: resubscribe after the bad batch
                kind = msg["type"]
                if kind == "error":
                    raise ProducerError(f"batch {msg.get('seq', next_seq)}: producer error "
                                        f"[{msg['code']}] {msg['reason']} ({where})",
                                        msg["code"], msg.get("seq"))
                if kind == "end":
                    raise StreamMismatch(f"the producer ended the stream before batch {next_seq} "
                                         f"but batches up to {part.to_seq - 1} were planned ({where})")
                if kind != "batch":
                    yield bad(next_seq, None, f"expected a batch message, got {kind!r}")
                    next_seq += 1
                    break
                if msg["seq"] != next_seq:
                    raise StreamMismatch(f"expected batch {next_seq}, the producer sent batch "
                                         f"{msg['seq']} ({where})")
                try:
                    pixels = check_batch(msg, part.classes, part.image_shape)
                except (wire.WireError, BadBatch) as exc:
                    yield bad(next_seq, msg["epoch"], str(exc))
                else:
                    if msg["skipped"]:
                        log.info("batch %d: the producer skipped %d unreadable files", next_seq,
                                 len(msg["skipped"]))
                    yield batch_to_arrow(msg, pixels, part.classes)
                next_seq += 1
                lost = 0
