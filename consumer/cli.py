"""``chestct``: the Spark consumer's command line (train, predict, ingest).

    chestct train   --save-path DIR [--model svm|rf|sgd] [--engine sklearn|mllib] [--refit-every N] [--refit-growth F] [common]
    chestct predict --save-path DIR [--report report.json] [--plots-dir DIR] [common]
    chestct ingest  [common]           # only stream the split into the features table

The original flags work too: ``--mode train|predict --model rf|svm --save_path DIR``.
This module only parses and dispatches to :mod:`consumer.commands`; every default comes
from the module that owns it. See docs/consumer.md for every option.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Sequence

from producer.argtypes import float_at_least, float_in, int_at_least, key_value, port

DEFAULT_WORK_DIR = "chestct-work"
#: Producer batches between refits of the running svm/rf model: early numbers, few refits.
DEFAULT_REFIT_EVERY = 8
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


_positive_int = int_at_least(1)


def _common(parser: argparse.ArgumentParser, max_batches_per_trigger: int) -> None:
    from .features import BACKENDS, DEFAULT_BACKEND, FAMILIES
    from .spark import DEFAULT_MASTER, SHIP_CODE
    from .stream import settings

    net = parser.add_argument_group("producer")
    net.add_argument("--host", default=settings.DEFAULT_HOST, help="producer host (default: %(default)s)")
    net.add_argument("--port", type=port(), default=settings.DEFAULT_PORT, help="producer port (default: %(default)s)")
    net.add_argument("--connect-timeout", type=float_at_least(settings.MIN_TIMEOUT),
                     default=settings.DEFAULT_CONNECT_TIMEOUT,
                     help="seconds to keep retrying while the producer is not up (default: %(default)s)")
    net.add_argument("--read-timeout", type=float_at_least(settings.MIN_TIMEOUT),
                     default=settings.DEFAULT_READ_TIMEOUT,
                     help="seconds to wait for one frame before failing (default: %(default)s)")
    net.add_argument("--max-frame-bytes", type=int_at_least(settings.MIN_MAX_FRAME_BYTES),
                     default=settings.DEFAULT_MAX_FRAME_BYTES, help="largest frame accepted (default: %(default)s)")
    net.add_argument("--tls-ca", default=None, metavar="PEM",
                     help="the producer serves TLS: its CA or self-signed certificate (docs/security.md)")
    net.add_argument("--token-file", default=None, metavar="FILE",
                     help="the producer's shared token (mode 600), sent first on every connection")
    net.add_argument("--on-bad-batch", choices=settings.BAD_BATCH_POLICIES, default=settings.DEFAULT_BAD_BATCH,
                     help="a corrupt batch fails the run, or is skipped and counted (default: %(default)s)")
    net.add_argument("--max-batches-per-trigger", type=_positive_int,
                     default=max_batches_per_trigger,
                     help="producer batches per Spark micro-batch (default: %(default)s)")
    feats = parser.add_argument_group("features")
    feats.add_argument("--features", default=None,
                       help=f"comma-separated subset of {','.join(FAMILIES)} "
                            "(train default: consumer.features' defaults; predict: the model's)")
    feats.add_argument("--feature-option", type=key_value, action="append", default=[],
                       metavar="KEY=VALUE", help="feature parameter, e.g. hog.orientations=12 (repeatable)")
    feats.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                       help="feature kernels: featrs (rust) or scikit-image (default: %(default)s)")
    spark = parser.add_argument_group("spark")
    spark.add_argument("--master", default=DEFAULT_MASTER,
                       help="Spark master: local[*], local[N] or spark://HOST:PORT (default: %(default)s)")
    spark.add_argument("--threads-per-task", type=_positive_int, default=None,
                       help="featrs threads per Spark task; task slots become cores // this (default: 1)")
    spark.add_argument("--executor-cores", type=_positive_int, default=None,
                       help="cluster masters: cores per executor (default: this machine's)")
    spark.add_argument("--ship-code", choices=SHIP_CODE, default="auto",
                       help="how executors get chestct: auto = a code archive (spark.archives) for cluster "
                            "masters, this tree's path for local ones; none = installed on the workers "
                            "(default: %(default)s)")
    spark.add_argument("--spark-conf", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="extra Spark configuration (repeatable)")
    spark.add_argument("--work-dir", default=DEFAULT_WORK_DIR,
                       help="features tables and checkpoints: a path or a Hadoop-compatible URI such as "
                            "file:///shared/chestct (default: %(default)s)")
    parser.add_argument("--model-key-file", default=None, metavar="FILE",
                        help="sign (train) and require signed (predict) models with this key, kept outside "
                             "the model folder; default: the CHESTCT_MODEL_KEY environment variable, else none")
    from .tracking import add_cli_arguments

    add_cli_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    out.add_argument("--log-level", default="INFO", choices=LOG_LEVELS,
                     help="DEBUG also shows Spark's and the JVM's own output (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path

    from .learn.estimators import DEFAULT_MODEL, MODELS
    from .learn.fit import DEFAULT_ENGINE, ENGINES
    from .learn.incremental import DEFAULT_REFIT_GROWTH, DEFAULT_WINDOW, MAX_REFIT_GROWTH
    from .stream import settings

    parser = argparse.ArgumentParser(prog="chestct",
                                     description="chestct: the Spark consumer (train, predict, ingest)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,ingest}")
    train = commands.add_parser("train",
                                help="stream a split into the features table, then fit and save a model")
    train.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL,
                       help="classifier (default: %(default)s); sgd trains per producer batch")
    train.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                       help="scikit-learn in the driver or Spark ML (default: %(default)s)")
    train.add_argument("--save-path", "--save_path", dest="save_path", type=Path, required=True,
                       help="where the model versions are published (SAVE_PATH/versions/NNNNNN, LATEST)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--refit-every", type=_positive_int, default=DEFAULT_REFIT_EVERY, metavar="N",
                       help="svm/rf: refit the running model (for the per-batch training metrics) "
                            "every N producer batches (default: %(default)s)")
    train.add_argument("--refit-growth", type=float_in(0, MAX_REFIT_GROWTH), default=DEFAULT_REFIT_GROWTH,
                       metavar="F", help="svm/rf: refit only once the images added since the last refit are at "
                       "least F times the images it learned from, so refits stay cheap on a long stream "
                       "(0: every --refit-every batches; default: %(default)s)")
    train.add_argument("--window", type=_positive_int, default=DEFAULT_WINDOW, metavar="N",
                       help="svm/rf learn from the newest N images, so memory stays flat on an endless "
                            "stream (default: %(default)s)")
    train.add_argument("--publish-every", type=_positive_int, default=None, metavar="N",
                       help="publish a model version every N images (always: at the end and on Ctrl-C)")
    _common(train, settings.DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER)
    predict = commands.add_parser("predict", help="predict a split as it streams, with metrics per batch")
    predict.add_argument("--save-path", "--save_path", dest="save_path", type=Path, required=True,
                         help="model to load: a save path (its latest version) or one version's folder")
    predict.add_argument("--follow", action="store_true",
                         help="switch to each newer published version between micro-batches")
    predict.add_argument("--model", choices=MODELS, default=None,
                         help="(original flag) must match the saved model if given")
    predict.add_argument("--report", type=Path, default=None,
                         help="report JSON to write (default: WORK_DIR/report.json)")
    predict.add_argument("--plots-dir", type=Path, default=None,
                         help="folder for the PNG plots (default: WORK_DIR/plots)")
    _common(predict, settings.DEFAULT_MAX_BATCHES_PER_TRIGGER)
    ingest = commands.add_parser("ingest", help="only stream a split into the features table")
    _common(ingest, settings.DEFAULT_TRAIN_MAX_BATCHES_PER_TRIGGER)
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


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``chestct`` / ``python -m consumer``; returns the exit code."""
    import logging

    from . import console
    from .commands import COMMANDS, Run

    args = build_parser().parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    console.configure_logging(args.log_level)
    # SIGTERM (a supervisor stopping us) takes the same cleanup path as Ctrl-C. Both
    # handlers are put back at the end, for a caller that runs commands in-process.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_sigint = signal.getsignal(signal.SIGINT)
    run = Run(args)
    try:
        return COMMANDS[args.command](args, run)
    except KeyboardInterrupt:
        return _interrupted(console)
    except Exception as exc:  # one clear line for the user; the traceback at DEBUG
        if console.is_interrupt(exc):
            return _interrupted(console)
        logging.getLogger("chestct").debug("failure", exc_info=True)
        print(f"chestct {args.command}: error: {console.short_error(exc)}", file=sys.stderr)
        return 1
    finally:
        try:
            _stop_quietly(run)
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_sigint)


def _interrupted(console: Any) -> int:
    console.mute()
    print("\ninterrupted: stopping the streaming query and Spark", file=sys.stderr)
    return console.EXIT_INTERRUPTED


def _stop_quietly(run: Any) -> None:
    """Stop Spark; a second Ctrl-C during the stop is ignored rather than traced."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run.stop()
    except Exception as exc:  # the session is going away anyway
        import logging

        logging.getLogger("chestct").debug("stopping Spark failed: %s", exc)
    finally:
        signal.signal(signal.SIGINT, previous)
