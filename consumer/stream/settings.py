"""Connection and source defaults and bounds: the one owner of each.

The command line (:mod:`consumer.cli`), the ``chestct`` source options
(:mod:`consumer.stream.options`) and the client (:mod:`consumer.stream.client`) all take
their defaults, bounds and choice lists from here.
"""
from __future__ import annotations

from producer import wire

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = wire.DEFAULT_PORT
#: Seconds to keep retrying while the producer is not up (or restarting).
DEFAULT_CONNECT_TIMEOUT = 60.0
#: Seconds to wait for one frame on an open connection.
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_MAX_FRAME_BYTES = wire.DEFAULT_MAX_FRAME_BYTES
MIN_MAX_FRAME_BYTES = wire.MIN_FRAME_LIMIT
#: Smallest timeout accepted, in seconds.
MIN_TIMEOUT = 0.1
#: First and largest pause between connection attempts (exponential backoff).
RETRY_INITIAL = 0.2
RETRY_MAX = 5.0
#: Producer batches per Spark micro-batch: the source's default, and ``chestct predict``'s,
#: where a smaller micro-batch is a sooner prediction.
DEFAULT_MAX_BATCHES_PER_TRIGGER = 8
#: ``chestct train`` and ``ingest``: throughput first. Each micro-batch has a fixed cost
#: (commits, a Parquet file, a JVM plan, a Python task): 24 instead of 8 took a default train
#: of the real split from 93 to 75 CPU seconds, 64 instead of 24 from about 82 to 69, with
#: the same test-then-train scores (docs/consumer.md). Every producer batch is still
#: learned and scored on its own.
DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER = 64
#: Spark tasks a micro-batch is read by (the command sets it to the task slots).
DEFAULT_NUM_PARTITIONS = 2
#: Reconnects per batch before the batch counts as bad.
DEFAULT_MAX_RETRIES = 3
#: What a bad batch does: fail the query, or become a counted marker row.
BAD_BATCH_POLICIES = ("fail", "skip")
DEFAULT_BAD_BATCH = "fail"
