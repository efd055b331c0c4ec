"""``chestct train``: stream a split into the table, learn while it flows, publish model versions."""
from __future__ import annotations

import argparse
import sys
import time

from .. import console
from ..console import emit
from .common import (Run, feature_config, fetch_stream_hello, ingest_stream, log, prepare_table, print_skipped,
                     table_summary)


def cmd_train(args: argparse.Namespace, run: Run) -> int:
    from .tracking import Tracking

    tracking = Tracking(args)
    status = "FAILED"
    try:
        code = _train(args, run, tracking)
        status = "KILLED" if code == console.EXIT_INTERRUPTED else "FINISHED"
        return code
    finally:
        tracking.end(status)


def _train(args: argparse.Namespace, run: Run, tracking) -> int:
    from ..evaluate.report import train_batch_line
    from ..features import backend_module
    from ..learn.feeder import BatchFeeder
    from ..learn.incremental import IncrementalTrainer
    from ..learn.metadata import stream_meta
    from ..learn.prequential import PrequentialTrainer
    from ..learn.publisher import Publisher
    from ..learn import versions
    from ..learn.signing import load_key
    from ..preflight import check_stream, color_mode
    from ..stream.table import read_table

    config = feature_config(args)
    backend_module(args.backend)
    if args.model == "sgd" and args.engine == "mllib":
        raise ValueError("--model sgd trains incrementally with scikit-learn; use --engine sklearn")
    hello = fetch_stream_hello(args)
    finite = hello.get("total_batches") is not None
    if args.engine == "mllib" and not finite:
        raise ValueError("--engine mllib fits once on a finite stream; an endless stream trains with sklearn")
    check_stream(hello, config)
    tracking.train_started(args, config, hello)
    run.start_spark()
    paths = prepare_table(run, hello, config)
    common = dict(config=config, classes=hello["classes"], image_shape=hello["image_shape"],
                  color_mode=color_mode(hello), seed=args.seed)
    t0 = time.perf_counter()
    # Every model trains while the stream flows, on a bounded window of the newest images:
    # the per-batch (test-then-train) metrics and the published versions come from it.
    running = IncrementalTrainer(model=args.model, refit_every=args.refit_every,
                                 refit_growth=args.refit_growth, window=args.window, **common)
    publisher = Publisher(args.save_path, args.publish_every, stream_meta(hello, []),
                          key=load_key(args.model_key_file), on_publish=tracking.published)
    read = lambda seq: read_table(run.spark, paths.table, min_seq=seq)  # noqa: E731
    def on_entry(entry: dict) -> None:
        emit(train_batch_line(entry))
        tracking.train_batch(entry)

    feeder = BatchFeeder(PrequentialTrainer(running), read, on_entry=on_entry)
    feeder.next_seq = publisher.resume(running, lambda seq, n: _window_rows(run, paths, config, seq, n))

    def publish_running() -> str:
        return publisher.publish(running.finish(), images_seen=running.n_images,
                                 seq_last=feeder.next_seq - 1, prequential=feeder.prequential.final())

    def on_batch(progress) -> None:
        if feeder.catch_up() and publisher.due(running):
            emit(f"published version {publish_running()} ({running.n_images} images)")

    feeder.catch_up()
    interrupted = False
    try:
        ingest_stream(run, hello, config, paths, on_batch=on_batch)
    except KeyboardInterrupt:
        # Ctrl-C on an endless stream: stop the query, keep what was committed, publish it.
        interrupted = True
        console.mute()
        run.stop_queries()
    feeder.catch_up()  # any batch whose progress report was missed
    _, frame, skipped = table_summary(run, paths)
    publisher.describe.update(stream_meta(hello, skipped))
    summary = feeder.prequential.final()
    if summary is not None:
        print(f"training (test-then-train) on {summary['n_images']} images: acc={summary['accuracy']:.3f} "
              f"P={summary['macro_precision']:.3f} R={summary['macro_recall']:.3f} F1={summary['macro_f1']:.3f}")
    if running.n_batches == 0 and publisher.parent is None:
        raise RuntimeError(f"no images in the features table {paths.table}: nothing to train on")
    t1 = time.perf_counter()
    if finite and not interrupted and args.model != "sgd":
        model = _fit_table(run, args, paths, frame, common)
        name = publisher.publish(model, images_seen=running.n_images, seq_last=feeder.next_seq - 1,
                                 prequential=summary)
    else:
        name = publish_running()
    t2 = time.perf_counter()
    tracking.final(summary, [versions.resolve(args.save_path) / "model.json"])
    print(f"model {args.model} ({args.engine}) version {name} trained on {running.n_images} images, saved to "
          f"{args.save_path} (stream {t1 - t0:.1f}s, fit {t2 - t1:.1f}s)")
    print_skipped(skipped)
    if interrupted:
        print(f"interrupted: version {name} holds everything committed before Ctrl-C; stopping Spark",
              file=sys.stderr, flush=True)
        return console.EXIT_INTERRUPTED
    return 0


def _fit_table(run: Run, args: argparse.Namespace, paths, frame, common: dict):
    """The finite stream's final fit: the table's newest ``--window`` images (all, by default)."""
    from ..learn.fit import fit
    from ..stream.table import table_frame

    if frame.empty:
        raise RuntimeError(f"no images in the features table {paths.table}: nothing to train on")
    data = frame.tail(args.window) if args.window else frame
    log.info("fitting %s (%s) on %d images", args.model, args.engine, len(data))
    if args.engine == "mllib":
        data = table_frame(run.spark, paths.table).where("features is not null").select(
            "image_id", "label", "seq", "features", "sift")
    return fit(data, model=args.model, engine=args.engine, spark=run.spark, **common)


def _window_rows(run: Run, paths, config, seq_last: int, images: int):
    """(features, labels, sift) of the table's newest ``images`` images with ``seq <= seq_last``."""
    import numpy as np

    from ..stream.table import table_frame, training_frame

    rows = table_frame(run.spark, paths.table).where(f"seq <= {int(seq_last)}").orderBy(
        "seq", ascending=False).limit(int(images) * 2).toPandas()
    frame = training_frame(rows).tail(images)
    features = (np.stack([np.asarray(v, np.float32) for v in frame["features"]])
                if len(frame) else np.zeros((0, 0), np.float32))
    sift = list(frame["sift"]) if config.sift else None
    return features, frame["label"].to_numpy(np.int64), sift
