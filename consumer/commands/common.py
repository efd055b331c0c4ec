"""What every command shares: arguments to settings, the Spark run, streaming into the table."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..console import emit, mute_on_interrupt

log = logging.getLogger("chestct")

#: Where reports and plots go when the work dir is not on the local file system.
LOCAL_OUTPUT_DIR = "chestct-output"


# ------------------------------------------------------------------ from the arguments


def feature_config(args: argparse.Namespace, default: Any = None):
    """FeatureConfig from --features and --feature-option, on top of ``default`` if given."""
    from ..features import FAMILIES, FeatureConfig

    if args.features is None and not args.feature_option:
        return default if default is not None else FeatureConfig()
    options = dict(args.feature_option)
    for key in options:
        if key.split(".", 1)[0] not in FAMILIES or "." not in key:
            raise ValueError(f"--feature-option {key}: expected FAMILY.PARAM with FAMILY one of "
                             f"{', '.join(FAMILIES)}, e.g. hog.orientations=12")
    if args.features is not None:
        options["features"] = args.features
    parsed = FeatureConfig.from_options(options)
    if default is None:
        return parsed
    given = parsed.to_dict()
    return FeatureConfig.from_dict({**default.to_dict(), **{k: given[k] for k in options}})


def source_options(args: argparse.Namespace, partitions: int) -> dict[str, str]:
    """The chestct source's string options from the command line (``partitions``: task slots)."""
    return {
        "numPartitions": str(partitions),
        "host": args.host, "port": str(args.port),
        "connectTimeout": str(args.connect_timeout), "readTimeout": str(args.read_timeout),
        "maxFrameBytes": str(args.max_frame_bytes), "onBadBatch": args.on_bad_batch,
        "maxBatchesPerTrigger": str(args.max_batches_per_trigger),
        **({"tlsCa": str(args.tls_ca)} if args.tls_ca else {}),
        **({"tokenFile": str(args.token_file)} if args.token_file else {}),
    }


def fetch_stream_hello(args: argparse.Namespace) -> dict:
    """The producer's hello (with connect retries), before anything else starts."""
    from ..stream.client import ConnectConfig, fetch_hello

    return fetch_hello(ConnectConfig(host=args.host, port=args.port, connect_timeout=args.connect_timeout,
                                     read_timeout=args.read_timeout, max_frame_bytes=args.max_frame_bytes,
                                     tls_ca=args.tls_ca, token_file=args.token_file))


def output_dir(args: argparse.Namespace) -> Path:
    """The local folder for reports and plots: the work dir, when it is local."""
    from ..stream import storage

    return storage.local_path(storage.qualify(args.work_dir)) or Path(LOCAL_OUTPUT_DIR)


# ------------------------------------------------------------------ the run


class Run:
    """What one command run holds: the session and its queries, stopped on any exit."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.spark = None
        self.parallelism = None
        self.owns_session = False

    def start_spark(self) -> None:
        from pyspark import SparkContext

        from ..spark import build_session

        # A command run inside a process that already has a session (a notebook, a test)
        # works in that session and leaves it running afterwards.
        self.owns_session = SparkContext._active_spark_context is None
        self.spark, self.parallelism = build_session(
            self.args.master, threads_per_task=self.args.threads_per_task,
            executor_cores=self.args.executor_cores, extra=dict(self.args.spark_conf),
            log_level=self.args.log_level, ship_code=self.args.ship_code)
        log.info("Spark %s on %s: %s", self.spark.version, self.args.master, self.parallelism.describe())
        mute_on_interrupt()

    def stop_queries(self) -> None:
        """Stop the streaming queries, keeping the session (what they committed stays)."""
        if self.spark is None:
            return
        for query in self.spark.streams.active:
            try:
                query.stop()
            except Exception as exc:  # stopping is best effort; the session stop follows
                log.debug("could not stop query %s: %s", query.name, exc)

    def stop(self) -> None:
        if self.spark is None:
            return
        self.stop_queries()
        if self.owns_session:
            self.spark.stop()
        self.spark = None


def prepare_table(run: Run, hello: dict, config: Any) -> Any:
    """The StreamPaths of this stream and feature stage under --work-dir (stage.json written)."""
    from ..stream.table import describe, stream_paths

    paths = stream_paths(run.args.work_dir, hello, config, run.args.backend)
    describe(run.spark, paths, hello, config, run.args.backend)
    return paths


def ingest_stream(run: Run, hello: dict, config: Any, paths: Any, *, on_batch=None) -> None:
    """Stream the producer's split into its features table (resuming from its checkpoint)."""
    from ..stream.follow import follow_query
    from ..stream.ingest import start_ingest

    args = run.args
    log.info("streaming %s split (%s images, stream %s) into %s", hello["split"],
             hello.get("total_images") or "endless", hello["stream_id"], paths.table)
    query = start_ingest(run.spark, source_options=source_options(args, run.parallelism.slots),
                         config=config, backend=args.backend, n_threads=run.parallelism.n_threads,
                         paths=paths, finite=hello.get("total_batches") is not None)
    follow_query(query, total_batches=hello.get("total_batches"), on_batch=on_batch,
                 progress_bar=args.progress, emit=emit)


def table_summary(run: Run, paths: Any) -> tuple[Any, Any, list[dict]]:
    """(all rows, the training frame, the skipped files) of the stream's table, with warnings."""
    from ..stream.table import read_table, skipped_batches, skipped_files, training_frame

    table = read_table(run.spark, paths.table)
    bad = skipped_batches(table)
    if bad:
        log.warning("%d bad batches were skipped (seqs %s)", len(bad), ", ".join(str(b["seq"]) for b in bad))
    files = skipped_files(table)
    for item in files:
        log.warning("the producer skipped %s (batch %d): %s", item["id"], item["seq"], item["reason"])
    return table, training_frame(table), files


def print_skipped(files: list[dict]) -> None:
    if files:
        print(f"{len(files)} files skipped by the producer:")
        for item in files:
            print(f"  {item['id']}: {item['reason']}")
