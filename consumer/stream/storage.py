"""The work dir on any Hadoop-compatible file system (local paths, ``file://``, ``hdfs://`` ...).

Spark itself reads and writes the feature tables and checkpoints; the few small files the
consumer writes beside them (``stage.json``) and the existence checks go through Hadoop's
``FileSystem`` API of the running session, so a shared or remote work dir behaves like a
local one.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


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
