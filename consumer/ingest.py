"""Stream a split into the features table: a checkpointed, exactly-once Parquet query.

Layout under ``--work-dir`` (one folder per stream and feature configuration, so that a
different split, image size or feature set never mixes into an existing table)::

    <work-dir>/streams/<split>-<stream id>/<features>-<backend>-<config hash>/
        table/        Parquet files + _spark_metadata/ (the file sink's commit log)
        checkpoint/   offsets/, commits/, sources/ (the query's progress)
        stage.json    hello + feature configuration, for humans

The table holds one row per image (``seq, epoch, image_id, label, features, sift,
error``) and one marker row per skipped bad batch (``image_id`` null, ``error`` set).
Only files listed in ``table/_spark_metadata`` are committed: a consumer killed
mid-batch leaves stray part files that readers must ignore, which
:func:`committed_files` (and ``spark.read.parquet``) do.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

log = logging.getLogger("chestct.ingest")

TABLE_COLUMNS = ("seq", "epoch", "image_id", "label", "features", "sift", "error")


@dataclass(frozen=True)
class StreamPaths:
    """Where one stream's table and checkpoint live."""

    root: Path

    @property
    def table(self) -> Path:
        return self.root / "table"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def description(self) -> Path:
        return self.root / "stage.json"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:40] or "stream"


def stream_paths(work_dir: str | Path, hello: dict, config: Any, backend: str) -> StreamPaths:
    """The table/checkpoint folder for a stream (from its hello) and a feature stage."""
    config_json = json.dumps(config.to_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256(f"{config_json}|{backend}".encode()).hexdigest()[:10]
    stage = f"{'+'.join(config.features)}-{backend}-{digest}"
    stream = f"{_slug(hello['split'])}-{_slug(hello['stream_id'])[:16]}"
    return StreamPaths(Path(work_dir).resolve() / "streams" / stream / stage)


def describe(paths: StreamPaths, hello: dict, config: Any, backend: str) -> None:
    """Write stage.json (what this table is) once."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.description.exists():
        paths.description.write_text(json.dumps({
            "hello": hello, "features": config.to_dict(), "backend": backend,
        }, indent=2, sort_keys=True, default=str) + "\n")


# ------------------------------------------------------------------ the file sink log


def _log_batches(metadata: Path) -> dict[int, Path]:
    """Batch id -> log file (``N`` or ``N.compact``) in a ``_spark_metadata`` folder."""
    found: dict[int, Path] = {}
    if not metadata.is_dir():
        return found
    for entry in metadata.iterdir():
        match = re.fullmatch(r"(\d+)(\.compact)?", entry.name)
        if match:
            found[int(match.group(1))] = entry
    return found


def _log_entries(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("v"):
        raise ValueError(f"{path} is not a Spark file sink log (no version line)")
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"table file {uri} is not on the local filesystem")
    return Path(unquote(parsed.path))


def committed_files(table: str | Path, upto_batch: int | None = None) -> list[Path]:
    """Parquet files the file sink committed (its ``_spark_metadata`` log), in order.

    Parameters
    ----------
    table : path
        The table folder.
    upto_batch : int, optional
        Only files committed by micro-batches ``<= upto_batch``.

    Returns
    -------
    list of Path
        Empty when nothing was committed yet.
    """
    batches = _log_batches(Path(table) / "_spark_metadata")
    if upto_batch is not None:
        batches = {b: p for b, p in batches.items() if b <= upto_batch}
    if not batches:
        return []
    # A compact file holds every entry up to its batch; later plain files add to it.
    compacts = [b for b, p in batches.items() if p.name.endswith(".compact")]
    first = max(compacts) if compacts else min(batches)
    files: dict[str, None] = {}
    for batch_id in sorted(b for b in batches if b >= first):
        for entry in _log_entries(batches[batch_id]):
            if entry.get("action", "add") == "delete":
                files.pop(entry["path"], None)
            elif not entry.get("isDir"):
                files[entry["path"]] = None
    return [_local_path(uri) for uri in files]


def committed_batch_ids(table: str | Path) -> list[int]:
    """Micro-batch ids the file sink has committed, ascending."""
    return sorted(_log_batches(Path(table) / "_spark_metadata"))


def files_of_batch(table: str | Path, batch_id: int) -> list[Path]:
    """Files that micro-batch ``batch_id`` added to the table."""
    before = set(committed_files(table, batch_id - 1)) if batch_id > 0 else set()
    return [f for f in committed_files(table, batch_id) if f not in before]


def read_table(table: str | Path, files: list[Path] | None = None, columns=None):
    """The committed rows of the features table as a pandas DataFrame.

    Parameters
    ----------
    table : path
        The table folder.
    files : list of Path, optional
        Read only these (e.g. :func:`files_of_batch`); default all committed files.
    columns : sequence of str, optional
        Columns to read (default all).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = committed_files(table) if files is None else files
    if not files:
        import pandas as pd

        return pd.DataFrame({name: [] for name in (columns or TABLE_COLUMNS)})
    tables = [pq.read_table(f, columns=columns) for f in files]
    return pa.concat_tables(tables).to_pandas()


def training_frame(table):
    """Image rows only (no skip markers), in the columns training.fit takes."""
    frame = table[table["image_id"].notna()] if "image_id" in table else table
    return frame[["image_id", "label", "seq", "features", "sift"]].sort_values(
        ["seq", "image_id"]).reset_index(drop=True)


# ------------------------------------------------------------------ the query


@dataclass
class BatchProgress:
    """One finished micro-batch as the driver sees it."""

    batch_id: int
    start_seq: int | None
    end_seq: int | None
    rows: int
    seconds: float
    rows_per_s: float

    def line(self) -> str:
        if self.end_seq is None or (self.start_seq is not None and self.end_seq <= self.start_seq):
            seqs = "none"
        else:
            # The first micro-batch of a new query reports no start offset.
            seqs = f"{'' if self.start_seq is None else self.start_seq}..{self.end_seq - 1}"
        return (f"micro-batch {self.batch_id}: producer batches {seqs}, {self.rows} rows in "
                f"{self.seconds:.1f}s ({self.rows_per_s:.1f} rows/s)")


def _seq(offset: Any) -> int | None:
    if offset is None:
        return None
    if isinstance(offset, str):
        offset = json.loads(offset)
    return int(offset["seq"]) if isinstance(offset, dict) and "seq" in offset else None


def batch_progress(progress: dict) -> BatchProgress:
    """Summarise one ``StreamingQueryProgress`` (as a dict)."""
    source = progress["sources"][0] if progress.get("sources") else {}
    seconds = progress.get("durationMs", {}).get("triggerExecution", 0) / 1000.0
    rows = int(progress.get("numInputRows", 0))
    return BatchProgress(batch_id=int(progress["batchId"]), start_seq=_seq(source.get("startOffset")),
                         end_seq=_seq(source.get("endOffset")), rows=rows, seconds=seconds,
                         rows_per_s=rows / seconds if seconds > 0 else 0.0)


def follow_query(query, *, total_batches: int | None, start_seq: int = 0,
                 on_batch: Callable[[BatchProgress], None] | None = None,
                 progress_bar: bool = True, poll_seconds: float = 0.5,
                 should_stop: Callable[[], bool] | None = None,
                 emit: Callable[[str], None] | None = None,
                 log_batches: bool = True,
                 until: Callable[[], bool] | None = None) -> list[BatchProgress]:
    """Wait for a streaming query, logging each micro-batch and moving a progress bar.

    Parameters
    ----------
    query : pyspark.sql.streaming.StreamingQuery
    total_batches : int or None
        Producer batches in the stream (bar total); None for an endless stream.
    start_seq : int
        Where a new query starts (its first progress report has no start offset).
    on_batch : callable, optional
        Called with each :class:`BatchProgress` after it is logged.
    should_stop : callable, optional
        Polled; when it returns True the query is stopped (endless streams, benches).
    emit : callable, optional
        Prints each micro-batch line (default: logged at INFO).
    log_batches : bool
        Whether to print a line per micro-batch at all (prediction prints its own).
    until : callable, optional
        Polled; when it returns True this returns, leaving the query running.

    Returns
    -------
    list of BatchProgress

    Raises
    ------
    pyspark.errors.StreamingQueryException
        If the query failed.
    """
    from tqdm import tqdm

    done: list[BatchProgress] = []
    seen: set[int] = set()
    bar = tqdm(total=total_batches, initial=0, unit="batch", desc="stream",
               disable=not progress_bar, dynamic_ncols=True)

    def drain() -> None:
        for raw in query.recentProgress:
            progress = raw if isinstance(raw, dict) else json.loads(raw.json)
            if progress["batchId"] in seen or not progress.get("sources"):
                continue
            seen.add(progress["batchId"])
            item = batch_progress(progress)
            if item.start_seq is None:
                # A new query's first progress has no start offset: it began at start_seq.
                item.start_seq = done[-1].end_seq if done else start_seq
            done.append(item)
            if bar.n == 0 and item.start_seq:
                bar.update(item.start_seq)
            if item.end_seq is not None:
                bar.update(max(0, item.end_seq - bar.n))
            if log_batches:
                (emit or log.info)(item.line())
            if on_batch is not None:
                on_batch(item)

    try:
        while query.isActive:
            query.awaitTermination(poll_seconds)
            drain()
            if until is not None and until():
                return done
            if should_stop is not None and should_stop():
                query.stop()
        drain()
    finally:
        bar.close()
    error = query.exception()
    if error is not None:
        raise error
    return done


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
    from consumer.stage import add_features

    stream = spark.readStream.format("chestct").options(**source_options).load()
    featured = add_features(stream, config, backend=backend, n_threads=n_threads)
    writer = (featured.select(*TABLE_COLUMNS).writeStream.format("parquet")
              .option("checkpointLocation", str(paths.checkpoint))
              .queryName(f"chestct-ingest-{int(time.time())}"))
    writer = writer.trigger(availableNow=True) if finite else writer.trigger(processingTime="0 seconds")
    return writer.start(str(paths.table))
