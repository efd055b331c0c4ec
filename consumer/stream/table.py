"""The features table of one stream and feature stage: where it lives and how it is read.

Layout under ``--work-dir`` (a local path or any Hadoop-compatible URI; one folder per
stream and feature configuration, so that a different split, image size or feature set
never mixes into an existing table)::

    <work-dir>/streams/<split>-<stream id>/<features>-<backend>-<config hash>/
        table/        Parquet files + _spark_metadata/ (the file sink's commit log)
        checkpoint/   offsets/, commits/, sources/ (the query's progress)
        stage.json    hello + feature configuration, for humans

The table holds one row per image (``seq, epoch, image_id, label, features, sift,
error``) and one marker row per skipped bad batch (``image_id`` null, ``error`` set).
It is read only through Spark's Parquet reader, which follows the file sink's log: a
consumer killed mid-batch leaves stray part files that are never read.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from . import storage

TABLE_COLUMNS = ("seq", "epoch", "image_id", "label", "features", "sift", "error")
#: The table's schema, given to the reader so that an empty table reads as no rows.
TABLE_SCHEMA = ("seq long, epoch long, image_id string, label int, features array<float>, "
                "sift binary, error string")
#: ``error`` of a row standing for a file the producer skipped (its reason follows).
SKIPPED_FILE_PREFIX = "skipped by the producer: "
#: Columns training reads, in this order.
TRAINING_COLUMNS = ("image_id", "label", "seq", "features", "sift")


@dataclass(frozen=True)
class StreamPaths:
    """Where one stream's table and checkpoint live (paths or URIs, as Spark takes them)."""

    root: str

    @property
    def table(self) -> str:
        return storage.join(self.root, "table")

    @property
    def checkpoint(self) -> str:
        return storage.join(self.root, "checkpoint")

    @property
    def description(self) -> str:
        return storage.join(self.root, "stage.json")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:40] or "stream"


def stream_paths(work_dir: str, hello: dict, config: Any, backend: str) -> StreamPaths:
    """The table/checkpoint folder for a stream (from its hello) and a feature stage."""
    config_json = json.dumps(config.to_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256(f"{config_json}|{backend}".encode()).hexdigest()[:10]
    stage = f"{'+'.join(config.features)}-{backend}-{digest}"
    stream = f"{_slug(hello['split'])}-{_slug(hello['stream_id'])[:16]}"
    return StreamPaths(storage.join(storage.qualify(work_dir), "streams", stream, stage))


def describe(spark, paths: StreamPaths, hello: dict, config: Any, backend: str) -> None:
    """Write stage.json (what this table is) once."""
    if not storage.exists(spark, paths.description):
        storage.write_text(spark, paths.description, json.dumps({
            "hello": hello, "features": config.to_dict(), "backend": backend,
        }, indent=2, sort_keys=True, default=str) + "\n")


def table_frame(spark, table: str, *, min_seq: int | None = None):
    """The committed rows of a features table as a Spark DataFrame (no rows if none yet).

    Parameters
    ----------
    table : str
        The table folder (path or URI).
    min_seq : int, optional
        Only rows of producer batches ``seq >= min_seq``.
    """
    if not storage.exists(spark, table):
        # From an RDD without partitions: a list, even an empty one, would start a Python
        # worker daemon and its workers just to convert no rows (about 1.6 CPU s).
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), TABLE_SCHEMA)
    frame = spark.read.schema(TABLE_SCHEMA).parquet(table)
    if min_seq is not None:
        frame = frame.where(frame["seq"] >= int(min_seq))
    return frame


def read_table(spark, table: str, *, min_seq: int | None = None, columns=TABLE_COLUMNS):
    """The committed rows of a features table as a pandas DataFrame (see :func:`table_frame`)."""
    return table_frame(spark, table, min_seq=min_seq).select(*columns).toPandas()


def training_frame(table):
    """Image rows only, in the columns training reads, ordered by (seq, id).

    Rows without features are left out: a skipped batch's marker (``image_id`` null) and a
    file the producer skipped (``image_id`` set, ``error`` says why).
    """
    frame = table[table["features"].notna()]
    return frame[list(TRAINING_COLUMNS)].sort_values(["seq", "image_id"]).reset_index(drop=True)


def skipped_files(table) -> list[dict]:
    """Files the producer skipped, as ``{"id", "seq", "reason"}`` in (seq, id) order."""
    rows = table[table["image_id"].notna() & table["features"].isna()]
    rows = rows.sort_values(["seq", "image_id"])
    return [{"id": str(i), "seq": int(s), "reason": skip_reason(e)}
            for i, s, e in zip(rows["image_id"], rows["seq"], rows["error"])]


def skipped_batches(table) -> list[dict]:
    """Bad batches the consumer skipped (``onBadBatch=skip``), as ``{"seq", "reason"}``."""
    rows = table[table["image_id"].isna()].sort_values("seq")
    return [{"seq": int(s), "reason": str(e)} for s, e in zip(rows["seq"], rows["error"])]


def skip_reason(error) -> str:
    """The producer's reason from a skipped-file row's ``error``."""
    text = str(error)
    return text[len(SKIPPED_FILE_PREFIX):] if text.startswith(SKIPPED_FILE_PREFIX) else text
