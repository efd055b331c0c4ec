"""What train and predict record in MLflow when ``--mlflow`` (or ``MLFLOW_TRACKING_URI``) is set.

A thin adapter from the commands' events to :class:`consumer.tracking.MlflowTracker`; every
method does nothing when tracking is off. See docs/mlflow.md.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Iterable

log = logging.getLogger("chestct")

#: Per-batch numbers logged with step = images seen.
BATCH_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "images_per_s")


class Tracking:
    """The optional MLflow run of one command."""

    def __init__(self, args: argparse.Namespace):
        from ..tracking import tracker_from_args

        # Created (and its URI checked) before Spark starts: a bad URI fails in a second.
        self.tracker = tracker_from_args(args)

    def train_started(self, args: argparse.Namespace, config, hello: dict) -> None:
        if self.tracker is None:
            return
        params = {"model": args.model, "engine": args.engine, "seed": args.seed, "refit_every": args.refit_every,
                  "refit_growth": args.refit_growth,
                  "window": args.window, "publish_every": args.publish_every, "backend": args.backend,
                  "features": config.to_dict()}
        self.tracker.start_train_run(params, tags={"chestct.split": hello["split"]})
        self.tracker.log_stream(hello["stream_id"], hello.get("preprocessing") or {})

    def train_batch(self, entry: dict) -> None:
        """One point per producer batch; the scores once a model predicted anything (batch 2 on)."""
        if self.tracker is None:
            return
        metrics = {k: entry[k] for k in BATCH_METRICS if k in entry}
        metrics["n_evaluated"] = entry.get("n_evaluated", 0)
        self.tracker.log_batch(metrics, step=int(entry["n_images"]))

    def published(self, model_dir: Path, model) -> None:
        """A published version becomes a registered-model version (skops, never pickle)."""
        if self.tracker is None:
            return
        from ..learn.model_store import TRUSTED_TYPES

        version = self.tracker.register_model_version(
            model_dir, estimator=model.estimator, skops_trusted_types=sorted(TRUSTED_TYPES))
        log.info("registered %s as MLflow model %s version %s", model_dir.name, self.tracker.model_name, version)

    def predict_started(self, model_dir: Path, hello: dict) -> None:
        if self.tracker is None:
            return
        found = self.tracker.find_model_version(model_dir)
        if found is None:
            log.warning("the model %s is not registered in MLflow: the predict run is not tracked "
                        "(train it with --mlflow to register it)", model_dir)
            self.tracker = None
            return
        self.tracker.start_predict_run(*found, tags={"chestct.split": hello["split"]})
        self.tracker.log_stream(hello["stream_id"], hello.get("preprocessing") or {}, role="predict")

    def predict_finished(self, report: dict, artifacts: Iterable[Path]) -> None:
        if self.tracker is None:
            return
        for entry in report["batches"]:
            self.tracker.log_batch({k: entry[k] for k in BATCH_METRICS if k in entry}, step=int(entry["n_images"]))
        self.final(report, artifacts)

    def final(self, summary: dict | None, artifacts: Iterable[Path] = ()) -> None:
        if self.tracker is None:
            return
        if summary:
            self.tracker.log_final({k: summary[k] for k in ("accuracy", "macro_precision", "macro_recall",
                                                             "macro_f1", "n_images") if k in summary})
        paths = [p for p in artifacts if Path(p).exists()]
        if paths:
            self.tracker.log_artifacts(paths)

    def end(self, status: str = "FINISHED") -> None:
        if self.tracker is not None and self.tracker.run_id is not None:
            self.tracker.end(status)
