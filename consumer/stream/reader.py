"""The executor side of the ``chestct`` source: one task reads one range of producer batches.

Each input partition subscribes to its own seq range ``[from_seq, to_seq)`` and turns every
batch into an Arrow record batch of :data:`SCHEMA`, one row per image (a skipped bad batch
becomes one marker row). Only the wire codec and the client are imported here: decoding a
frame in an executor never imports the producer's server or OpenCV.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Sequence

from pyspark.sql.datasource import InputPartition

from producer import wire

from .client import ProducerError, StreamMismatch, backoff_delays, open_connection
from .options import SourceOptions
from .table import SKIPPED_FILE_PREFIX

log = logging.getLogger("chestct.source")

#: Rows of the source, one per image (or one marker row per skipped batch).
SCHEMA = ("seq long, epoch long, image_id string, label int, label_name string, "
          "height int, width int, channels int, pixels binary, error string")
#: Rows when the reader runs the feature stage itself (option ``features``): the same
#: without ``pixels``, plus the stage's ``features`` and ``sift`` (:mod:`consumer.features.stage`).
FEATURED_SCHEMA = SCHEMA.replace("pixels binary, ", "") + ", features array<float>, sift binary"


def settle_worker() -> None:
    """Freeze the objects this Python worker holds when a task starts.

    PySpark's worker daemon runs a full ``gc.collect()`` after every task, which walks every
    object the worker holds: the imports (pyspark, pyarrow, numpy, the feature stage, and
    pandas, which pyarrow imports during the first task) and their caches. A py-spy profile
    of ``chestct train`` found a tenth of the workers' time there, and one of ``predict``
    5.6 % with the objects of the first task's imports still walked (docs/consumer.md).
    Frozen objects are skipped by collections. What is frozen at a task's start survived
    the collection after the previous task, so no garbage is kept: only objects that die
    later inside a reference cycle are, and such cycles are not made per task.
    """
    import gc

    gc.freeze()


class BadBatch(RuntimeError):
    """A batch failed its checks and ``onBadBatch`` is ``fail``."""


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


def skipped_files_batch(msg: dict):
    """One row per file the producer skipped in a batch: ``image_id`` set, no pixels, ``error``.

    These rows carry no features; they let every command name the skipped files and why.
    """
    import pyarrow as pa

    records = msg["skipped"]
    n = len(records)
    values = {name: pa.nulls(n, typ) for name, typ in zip(arrow_schema().names, arrow_schema().types)}
    values["seq"] = pa.array([msg["seq"]] * n, pa.int64())
    values["epoch"] = pa.array([msg["epoch"]] * n, pa.int64())
    values["image_id"] = pa.array([r["id"] for r in records], pa.string())
    values["error"] = pa.array([f"{SKIPPED_FILE_PREFIX}{r['reason']}" for r in records], pa.string())
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
                    yield batch_to_arrow(msg, pixels, part.classes)
                    if msg["skipped"]:
                        log.info("batch %d: the producer skipped %d unreadable files", next_seq,
                                 len(msg["skipped"]))
                        yield skipped_files_batch(msg)
                next_seq += 1
                lost = 0
