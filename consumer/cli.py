"""``chestct``: the Spark consumer's command line (train, predict, ingest).

    chestct train   --save-path DIR [--model svm|rf|sgd] [--engine sklearn|mllib] [--refit-every N] [common]
    chestct predict --save-path DIR [--report report.json] [--plots-dir DIR] [common]
    chestct ingest  [common]           # only stream the split into the features table

The original flags work too: ``--mode train|predict --model rf|svm --save_path DIR``.
See docs/consumer.md for every option and the work-dir layout.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("chestct")

DEFAULT_WORK_DIR = "chestct-work"
EXIT_INTERRUPTED = 130
#: Producer batches between refits of the running svm/rf model: early numbers, few refits.
DEFAULT_REFIT_EVERY = 8


# ------------------------------------------------------------------ arguments


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    from producer import wire

    net = parser.add_argument_group("producer")
    net.add_argument("--host", default="127.0.0.1", help="producer host (default: %(default)s)")
    net.add_argument("--port", type=int, default=6100, help="producer port (default: %(default)s)")
    net.add_argument("--connect-timeout", type=_positive_float, default=60.0,
                     help="seconds to keep retrying while the producer is not up (default: %(default)s)")
    net.add_argument("--read-timeout", type=_positive_float, default=120.0,
                     help="seconds to wait for one frame before failing (default: %(default)s)")
    net.add_argument("--max-frame-bytes", type=_positive_int, default=wire.DEFAULT_MAX_FRAME_BYTES,
                     help="largest frame accepted (default: %(default)s)")
    net.add_argument("--on-bad-batch", choices=("fail", "skip"), default="fail",
                     help="a corrupt batch fails the run, or is skipped and counted (default: %(default)s)")
    net.add_argument("--max-batches-per-trigger", type=_positive_int, default=8,
                     help="producer batches per Spark micro-batch (default: %(default)s)")
    feats = parser.add_argument_group("features")
    feats.add_argument("--features", default=None,
                       help="comma-separated subset of hog,lbp,glcm,gabor,sift "
                            "(train default: consumer.features' defaults; predict: the model's)")
    feats.add_argument("--feature-option", type=_key_value, action="append", default=[],
                       metavar="KEY=VALUE", help="feature parameter, e.g. hog.orientations=12 (repeatable)")
    feats.add_argument("--backend", choices=("rust", "skimage"), default="rust",
                       help="feature kernels: featrs (rust) or scikit-image (default: %(default)s)")
    spark = parser.add_argument_group("spark")
    spark.add_argument("--master", default="local[*]",
                       help="Spark master: local[*], local[N] or spark://HOST:PORT (default: %(default)s)")
    spark.add_argument("--threads-per-task", type=_positive_int, default=None,
                       help="featrs threads per Spark task; task slots become cores // this (default: 1)")
    spark.add_argument("--executor-cores", type=_positive_int, default=None,
                       help="cluster masters: cores per executor (default: this machine's)")
    spark.add_argument("--spark-conf", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="extra Spark configuration (repeatable)")
    spark.add_argument("--work-dir", type=Path, default=Path(DEFAULT_WORK_DIR),
                       help="features tables, checkpoints and default report location (default: %(default)s)")
    out = parser.add_argument_group("output")
    out.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    out.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def build_parser() -> argparse.ArgumentParser:
    from consumer.models import DEFAULT_MODEL, MODELS

    parser = argparse.ArgumentParser(prog="chestct",
                                     description="chestct: the Spark consumer (train, predict, ingest)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,ingest}")
    train = commands.add_parser("train",
                                help="stream a split into the features table, then fit and save a model")
    train.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL,
                       help="classifier (default: %(default)s); sgd trains per producer batch")
    train.add_argument("--engine", choices=("sklearn", "mllib"), default="sklearn",
                       help="scikit-learn in the driver or Spark ML (default: %(default)s)")
    train.add_argument("--save-path", "--save_path", dest="save_path", type=Path, required=True,
                       help="model directory to write")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--refit-every", type=_positive_int, default=DEFAULT_REFIT_EVERY, metavar="N",
                       help="svm/rf: refit the running model (for the per-batch training metrics) "
                            "every N producer batches (default: %(default)s)")
    _common(train)
    predict = commands.add_parser("predict", help="predict a split as it streams, with metrics per batch")
    predict.add_argument("--save-path", "--save_path", dest="save_path", type=Path, required=True,
                         help="model directory to load")
    predict.add_argument("--model", choices=MODELS, default=None,
                         help="(original flag) must match the saved model if given")
    predict.add_argument("--report", type=Path, default=None,
                         help="report JSON to write (default: WORK_DIR/report.json)")
    predict.add_argument("--plots-dir", type=Path, default=None,
                         help="folder for the PNG plots (default: WORK_DIR/plots)")
    _common(predict)
    ingest = commands.add_parser("ingest", help="only stream a split into the features table")
    _common(ingest)
    return parser


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Turn the original ``--mode train|predict`` form into the ``train|predict`` subcommand."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--mode" and i + 1 < len(argv):
            mode = argv[i + 1]
            return [mode] + argv[:i] + argv[i + 2:]
        if arg.startswith("--mode="):
            return [arg.split("=", 1)[1]] + argv[:i] + argv[i + 1:]
    return argv


def feature_config(args: argparse.Namespace, default: Any = None):
    """FeatureConfig from --features and --feature-option, on top of ``default`` if given."""
    from consumer.features import FAMILIES, FeatureConfig

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


def source_options(args: argparse.Namespace, partitions: int = 2) -> dict[str, str]:
    """The chestct source's string options from the command line (``partitions``: task slots)."""
    return {
        "numPartitions": str(partitions),
        "host": args.host, "port": str(args.port),
        "connectTimeout": str(args.connect_timeout), "readTimeout": str(args.read_timeout),
        "maxFrameBytes": str(args.max_frame_bytes), "onBadBatch": args.on_bad_batch,
        "maxBatchesPerTrigger": str(args.max_batches_per_trigger),
    }


def connect_config(args: argparse.Namespace):
    from consumer.client import ConnectConfig

    return ConnectConfig(host=args.host, port=args.port, connect_timeout=args.connect_timeout,
                         read_timeout=args.read_timeout, max_frame_bytes=args.max_frame_bytes)


def color_mode(hello: dict) -> str:
    """``grayscale`` or ``rgb`` as the producer preprocesses (from the hello)."""
    channels = hello["image_shape"][2]
    return "grayscale" if channels == 1 else "rgb"


def check_backend(backend: str) -> None:
    """Fail early in the driver if the chosen feature backend cannot run here."""
    from consumer import features

    features._backend(backend)


# ------------------------------------------------------------------ commands


class Run:
    """What one command run holds: the session and its query, stopped on any exit."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.spark = None
        self.parallelism = None

    def start_spark(self) -> None:
        from consumer.spark import build_session

        self.spark, self.parallelism = build_session(
            self.args.master, threads_per_task=self.args.threads_per_task,
            executor_cores=self.args.executor_cores, extra=dict(self.args.spark_conf))
        log.info("Spark %s on %s: %s", self.spark.version, self.args.master, self.parallelism.describe())

    def stop(self) -> None:
        if self.spark is None:
            return
        for query in self.spark.streams.active:
            try:
                query.stop()
            except Exception as exc:  # stopping is best effort; the session stop follows
                log.warning("could not stop query %s: %s", query.name, exc)
        self.spark.stop()
        self.spark = None


def _emit(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)


def prepare_table(run: Run, hello: dict, config: Any) -> Any:
    """The StreamPaths of this stream and feature stage under --work-dir (stage.json written)."""
    from consumer.ingest import describe, stream_paths

    paths = stream_paths(run.args.work_dir, hello, config, run.args.backend)
    describe(paths, hello, config, run.args.backend)
    return paths


def ingest_stream(run: Run, hello: dict, config: Any, paths: Any, *, on_batch=None) -> None:
    """Stream the producer's split into its features table (resuming from its checkpoint)."""
    from consumer.ingest import follow_query, start_ingest

    args = run.args
    finite = hello.get("total_batches") is not None
    log.info("streaming %s split (%s images, stream %s) into %s", hello["split"],
             hello.get("total_images") or "endless", hello["stream_id"], paths.table)
    options = source_options(args, run.parallelism.slots)
    query = start_ingest(run.spark, source_options=options, config=config, backend=args.backend,
                         n_threads=run.parallelism.n_threads, paths=paths, finite=finite)
    follow_query(query, total_batches=hello.get("total_batches"), on_batch=on_batch,
                 progress_bar=args.progress, emit=_emit)


def _table_summary(paths) -> tuple[Any, Any]:
    from consumer.ingest import read_table, training_frame

    table = read_table(paths.table)
    frame = training_frame(table)
    markers = table[table["image_id"].isna()]
    if len(markers):
        log.warning("%d bad batches were skipped (seqs %s)", len(markers),
                    ", ".join(str(s) for s in sorted(markers["seq"].tolist())))
    return table, frame


def cmd_ingest(args: argparse.Namespace, run: Run) -> int:
    from consumer.client import fetch_hello

    config = feature_config(args)
    check_backend(args.backend)
    hello = fetch_hello(connect_config(args))
    run.start_spark()
    paths = prepare_table(run, hello, config)
    ingest_stream(run, hello, config, paths)
    table, frame = _table_summary(paths)
    print(f"table {paths.table}: {len(frame)} images, {len(table) - len(frame)} skipped batches")
    return 0


class BatchFeeder:
    """Feeds each committed micro-batch of the table to a PrequentialTrainer.

    Each producer batch is predicted by the running model (when there is one), then
    trained on; one line per producer batch shows the running training metrics.
    """

    def __init__(self, prequential: Any, table: Path, emit=None):
        self.prequential = prequential
        self.table = table
        self.emit = emit or log.info
        self.fed: set[int] = set()

    @property
    def trainer(self) -> Any:
        return self.prequential.trainer

    def catch_up(self) -> None:
        """Train on the batches a previous (interrupted) run already committed."""
        from consumer.ingest import committed_batch_ids

        for batch_id in committed_batch_ids(self.table):
            self.feed(batch_id)

    def feed(self, batch_id: int) -> None:
        from consumer.ingest import files_of_batch, read_table, training_frame
        from consumer.report import train_batch_line

        if batch_id in self.fed:
            return
        self.fed.add(batch_id)
        frame = training_frame(read_table(self.table, files=files_of_batch(self.table, batch_id)))
        if frame.empty:
            return
        for entry in self.prequential.process(frame):
            self.emit(train_batch_line(entry))
        log.debug("micro-batch %d: %d images (%d so far)", batch_id, len(frame), self.trainer.n_images)

    def __call__(self, progress: Any) -> None:
        self.feed(progress.batch_id)


def cmd_train(args: argparse.Namespace, run: Run) -> int:
    from consumer import training
    from consumer.client import fetch_hello
    from consumer.prequential import PrequentialTrainer

    config = feature_config(args)
    check_backend(args.backend)
    if args.model == "sgd" and args.engine == "mllib":
        raise ValueError("--model sgd trains incrementally with scikit-learn; use --engine sklearn")
    hello = fetch_hello(connect_config(args))
    run.start_spark()
    paths = prepare_table(run, hello, config)
    common = dict(config=config, classes=hello["classes"], image_shape=hello["image_shape"],
                  color_mode=color_mode(hello), seed=args.seed)
    t0 = time.perf_counter()
    # Every model trains while the stream flows, for the per-batch (test-then-train)
    # metrics; svm/rf are then refitted on the whole table for the saved model.
    running = training.IncrementalTrainer(model=args.model, refit_every=args.refit_every, **common)
    feeder = BatchFeeder(PrequentialTrainer(running), paths.table, emit=_emit)
    feeder.catch_up()
    ingest_stream(run, hello, config, paths, on_batch=feeder)
    feeder.catch_up()  # any batch whose progress report was missed
    _, frame = _table_summary(paths)
    summary = feeder.prequential.final()
    if summary is not None:
        print(f"training (test-then-train) on {summary['n_images']} images: acc={summary['accuracy']:.3f} "
              f"P={summary['macro_precision']:.3f} R={summary['macro_recall']:.3f} F1={summary['macro_f1']:.3f}")
    if args.model == "sgd":
        t1 = time.perf_counter()
        model = feeder.trainer.finish()
    else:
        if frame.empty:
            raise RuntimeError(f"no images in the features table {paths.table}: nothing to train on")
        t1 = time.perf_counter()
        log.info("fitting %s (%s) on %d images", args.model, args.engine, len(frame))
        if args.engine == "mllib":
            data = (run.spark.read.parquet(str(paths.table)).where("image_id is not null")
                    .select("image_id", "label", "seq", "features", "sift"))
        else:
            data = frame
        model = training.fit(data, model=args.model, engine=args.engine, spark=run.spark, **common)
    model.save(args.save_path)
    t2 = time.perf_counter()
    print(f"model {args.model} ({args.engine}) trained on {model.meta['n_train_images']} images, saved to "
          f"{args.save_path} (stream {t1 - t0:.1f}s, fit {t2 - t1:.1f}s)")
    return 0


def cmd_predict(args: argparse.Namespace, run: Run) -> int:
    from consumer import model_store
    from consumer import report as reporting
    from consumer.client import fetch_hello
    from consumer.features import FeatureConfig
    from consumer.ingest import follow_query
    from consumer.predicting import StreamPredictor
    from consumer.stage import add_features
    from consumer.training import TrainedModel

    check_backend(args.backend)
    hello = fetch_hello(connect_config(args))
    # Refuse a mismatching model before paying for Spark; an mllib model can only be
    # loaded through a session, so it is checked from its verified metadata first.
    meta = model_store.read_meta(args.save_path)
    TrainedModel(meta).check_stream(hello)
    if args.model is not None and args.model != meta["model"]:
        raise ValueError(f"--model {args.model} but {args.save_path} holds a {meta['model']} model")
    trained_with = FeatureConfig.from_dict(meta["feature_config"])
    config = feature_config(args, default=trained_with)
    if config != trained_with:
        raise ValueError(f"the model was trained with features {meta['feature_config']['features']} "
                         f"and its parameters; predict with the same (drop --features/--feature-option)")
    run.start_spark()
    model = TrainedModel.load(args.save_path)
    log.info("predicting %s split (%s images) with %s/%s from %s", hello["split"],
             hello.get("total_images") or "endless", model.meta["model"], model.meta["engine"],
             args.save_path)
    predictor = StreamPredictor(model, emit=_emit)
    options = source_options(args, run.parallelism.slots)
    stream = run.spark.readStream.format("chestct").options(**options).load()
    featured = add_features(stream, config, backend=args.backend, n_threads=run.parallelism.n_threads)
    # Each prediction run reads the split once: a fresh checkpoint every time.
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{id(run):x}"
    checkpoint = Path(args.work_dir).resolve() / "predict" / f"checkpoint-{stamp}"
    writer = (featured.writeStream.foreachBatch(predictor.foreach_batch)
              .option("checkpointLocation", str(checkpoint)))
    finite = hello.get("total_batches") is not None
    writer = writer.trigger(availableNow=True) if finite else writer.trigger(processingTime="0 seconds")
    query = writer.start()
    interrupted = False
    try:
        follow_query(query, total_batches=hello.get("total_batches"), progress_bar=args.progress,
                     emit=_emit, log_batches=False)
    except KeyboardInterrupt:
        # An endless stream ends with Ctrl-C: report what was predicted until then.
        if not predictor.history:
            raise
        interrupted = True
        query.stop()
    result = predictor.report(
        model={k: model.meta[k] for k in ("model", "engine", "n_train_images", "n_features")},
        model_path=str(args.save_path), features=config.to_dict(), backend=args.backend,
        stream={k: hello.get(k) for k in ("stream_id", "split", "image_shape", "total_images")},
        interrupted=interrupted)
    reporting.print_report(result)
    report_path = args.report or Path(args.work_dir) / "report.json"
    plots = args.plots_dir or Path(args.work_dir) / "plots"
    reporting.write_report(result, report_path)
    reporting.plot_confusion_matrix(result, plots / "confusion_matrix.png")
    reporting.plot_accuracy_over_batches(predictor.history, plots / "accuracy_over_batches.png")
    print(f"report {report_path}; plots in {plots}" + (" (interrupted: partial)" if interrupted else ""))
    return EXIT_INTERRUPTED if interrupted else 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "ingest": cmd_ingest}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``chestct`` / ``python -m consumer``; returns the exit code."""
    args = build_parser().parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "py4j.clientserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # SIGTERM (a supervisor stopping us) takes the same cleanup path as Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    run = Run(args)
    try:
        return COMMANDS[args.command](args, run)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the streaming query and Spark", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one clear line for the user; the traceback at DEBUG
        log.debug("failure", exc_info=True)
        print(f"chestct {args.command}: error: {_short(exc)}", file=sys.stderr)
        return 1
    finally:
        try:
            run.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _short(exc: BaseException) -> str:
    """The informative part of an exception (Spark wraps Python errors in long traces)."""
    text = str(exc)
    for marker in ("BadBatch: ", "StreamMismatch: ", "ProducerError: ", "ProducerUnavailable: ",
                   "OptionError: ", "ModelMismatch: ", "ModelRefused: "):
        if marker in text:
            return marker.rstrip(": ") + ": " + text.split(marker, 1)[1].splitlines()[0]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first}"
