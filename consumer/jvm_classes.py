"""The driver JVM's class-data archive: Spark's classes mapped from a file, not parsed again.

A Spark driver JVM loads about 15,000 classes before its first micro-batch. Parsing and
verifying them is about a third of the JVM's start-up CPU on a small machine. Java 13 and
newer can write the classes one run loaded into an archive (``-XX:ArchiveClassesAtExit``)
and map that archive in later runs (``-XX:SharedArchiveFile``).

``python -m consumer.jvm_classes`` writes the archive; ``make setup`` runs it. The consumer
then starts its driver with the archive whenever the file exists. The JVM checks the
archive itself: one written by another JVM build or for other jars is ignored silently,
so a stale archive costs only the speed.

Where: ``$CHESTCT_JVM_ARCHIVE`` if set (``off`` turns it off), else
``<python prefix>/share/chestct/spark-<pyspark version>.jsa`` (about 180 MiB).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Where the archive is (a path), or ``off``.
ENV = "CHESTCT_JVM_ARCHIVE"
#: Set only in the child that writes the archive: the path its JVM dumps to at exit.
_WRITE_ENV = "_CHESTCT_JVM_ARCHIVE_WRITE"


def archive_path() -> Path | None:
    """The archive's path, or None when ``$CHESTCT_JVM_ARCHIVE`` is ``off``."""
    configured = os.environ.get(ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    import pyspark

    return Path(sys.prefix) / "share" / "chestct" / f"spark-{pyspark.__version__}.jsa"


def java_option() -> str:
    """The driver's JVM option for the archive: use it, write it (the builder), or nothing."""
    writing = os.environ.get(_WRITE_ENV)
    if writing:
        return f"-XX:ArchiveClassesAtExit={writing}"
    path = archive_path()
    return f"-XX:SharedArchiveFile={path}" if path is not None and path.is_file() else ""


def build(path: Path | None = None, timeout: float = 600) -> Path:
    """Write the archive: run a small Spark workload in a child whose JVM dumps its classes.

    The workload touches what every chestct command does: a session, Arrow transfers, a
    Python data source, Parquet, and a streaming query with a checkpoint. Classes it does
    not load are read from the jars as usual later.

    Raises
    ------
    RuntimeError
        The child failed or its JVM wrote no archive.
    """
    path = path or archive_path()
    if path is None:
        raise RuntimeError(f"{ENV}=off: no archive to build")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    env = dict(os.environ, **{_WRITE_ENV: str(partial)})
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    child = subprocess.run([sys.executable, "-m", "consumer.jvm_classes", "--workload"], env=env,
                           capture_output=True, text=True, timeout=timeout)
    try:
        if child.returncode != 0 or not partial.is_file():
            raise RuntimeError(f"the JVM wrote no class archive (exit {child.returncode}): "
                               f"{(child.stderr or child.stdout)[-2000:]}")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _workload() -> None:
    """What the archive-writing JVM runs (in the child :func:`build` starts)."""
    from pyspark.sql.datasource import DataSource, DataSourceReader

    from .spark import build_session

    class Numbers(DataSource):
        @classmethod
        def name(cls):
            return "chestct_jvm_classes_numbers"

        def schema(self):
            return "id int, label int"

        def reader(self, schema):
            return NumbersReader()

    class NumbersReader(DataSourceReader):
        def read(self, partition):
            yield from ((i, i % 4) for i in range(100))

    spark, _ = build_session("local[2]", app_name="chestct-jvm-classes", log_level="WARN")
    try:
        spark.dataSource.register(Numbers)
        frame = spark.read.format(Numbers.name()).load()
        frame.mapInArrow(lambda batches: batches, frame.schema).toPandas()
        with tempfile.TemporaryDirectory() as folder:
            frame.write.parquet(f"{folder}/table")
            spark.read.parquet(f"{folder}/table").groupBy("label").count().collect()
            query = (spark.readStream.format("rate").option("rowsPerSecond", 50).load()
                     .writeStream.option("checkpointLocation", f"{folder}/checkpoint")
                     .foreachBatch(lambda batch, epoch: batch.count()).start())
            time.sleep(1)  # a rate source has rows only after a tick
            query.processAllAvailable()
            query.stop()
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m consumer.jvm_classes",
                                 description="write the Spark driver's class-data archive (faster start)")
    ap.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.workload:
        _workload()
        return 0
    started = time.monotonic()
    try:
        path = build()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"chestct: no JVM class archive (Spark starts as usual, only slower): {exc}", file=sys.stderr)
        return 1
    print(f"JVM class archive: {path} ({path.stat().st_size / 2**20:.0f} MiB, "
          f"{time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
