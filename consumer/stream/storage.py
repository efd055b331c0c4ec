"""The work dir on any Hadoop-compatible file system (local paths, ``file://``, ``hdfs://`` ...).

Spark itself reads and writes the feature tables and checkpoints; the few small files the
consumer writes beside them (``stage.json``) and the existence checks go through Hadoop's
``FileSystem`` API of the running session, so a shared or remote work dir behaves like a
local one.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

#: Spark's choice of checkpoint file manager, read when a query starts.
CHECKPOINT_FILE_MANAGER_KEY = "spark.sql.streaming.checkpointFileManagerClass"
#: The manager of a checkpoint that is never resumed (``predict`` makes a new one per run).
#: Spark's default goes through Hadoop's FileContext, whose local file system, without
#: Hadoop's native library (pip's pyspark has none), starts a ``readlink`` process for each
#: rename check: about 20 processes and 50 ms per micro-batch of ``predict`` (a JFR
#: recording; docs/consumer.md). This one renames through the FileSystem API, without
#: them. Its rename is not atomic on every store, which only a resumed checkpoint needs;
#: ``train``'s, which is resumed, keeps Spark's default.
ONE_RUN_CHECKPOINT_FILE_MANAGER = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager")


def qualify(location: str | Path) -> str:
    """A work-dir location as Spark should see it: URIs as given, local paths made absolute.

    Relative local paths are resolved against this process's working directory, so that
    executors (which run elsewhere) and a restarted driver agree on the location.
    """
    text = str(location).strip()
    if not text:
        raise ValueError("the work dir must not be empty")
    if _scheme(text) not in ("", "file"):
        return text.rstrip("/")
    if _scheme(text) == "file":
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


def local_path(location: str) -> Path | None:
    """The local path of a location, or None when it lives on another file system."""
    scheme = _scheme(location)
    if scheme == "":
        return Path(location)
    if scheme == "file":
        return Path(urlparse(location).path)
    return None


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for paths and URIs alike."""
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


def _scheme(location: str) -> str:
    parsed = urlparse(location)
    # A Windows drive letter or a bare path has no real scheme.
    return parsed.scheme if len(parsed.scheme) > 1 else ""


def _filesystem(spark, location: str):
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def exists(spark, location: str) -> bool:
    """Whether a file or folder exists at ``location``."""
    fs, path = _filesystem(spark, location)
    return bool(fs.exists(path))


def write_text(spark, location: str, text: str) -> None:
    """Create (or replace) a small UTF-8 text file, making its parent folders."""
    fs, path = _filesystem(spark, location)
    out = fs.create(path, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def read_text(spark, location: str) -> str:
    """The content of a small UTF-8 text file."""
    fs, path = _filesystem(spark, location)
    stream = fs.open(path)
    try:
        jvm = spark._jvm
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


@contextmanager
def one_run_checkpoint(spark):
    """Start queries inside this block with :data:`ONE_RUN_CHECKPOINT_FILE_MANAGER`.

    A query reads the manager when it starts, so the session's setting is set only for the
    block, and left alone when the user chose a manager (``--spark-conf``).
    """
    if spark.conf.get(CHECKPOINT_FILE_MANAGER_KEY, None) is not None:
        yield
        return
    spark.conf.set(CHECKPOINT_FILE_MANAGER_KEY, ONE_RUN_CHECKPOINT_FILE_MANAGER)
    try:
        yield
    finally:
        spark.conf.unset(CHECKPOINT_FILE_MANAGER_KEY)
