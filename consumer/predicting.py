"""Prediction as the stream flows: a ``foreachBatch`` sink with running metrics.

Each Spark micro-batch (rows of the feature stage) is split into its producer batches
(by ``seq``, in order); each is predicted and folded into
:class:`consumer.metrics.RunningMetrics`, which prints one line per producer batch. Marker
rows of skipped bad batches are counted, not predicted.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from consumer.metrics import RunningMetrics
from consumer.report import per_batch_line

log = logging.getLogger("chestct.predict")

COLUMNS = ("seq", "image_id", "label", "features", "sift", "error")


class StreamPredictor:
    """Predicts micro-batches with a :class:`consumer.training.TrainedModel`.

    Parameters
    ----------
    model : consumer.training.TrainedModel
    emit : callable
        Gets each per-batch metrics line (default: logged at INFO).
    """

    def __init__(self, model: Any, emit: Callable[[str], None] | None = None):
        self.model = model
        self.running = RunningMetrics(model.classes)
        self.skipped: list[dict] = []
        self.emit = emit or log.info
        self.n_micro_batches = 0
        self._done_batch_ids: set[int] = set()
        self._started = time.perf_counter()

    def process(self, rows) -> list[dict]:
        """Predict one micro-batch given as a pandas DataFrame with :data:`COLUMNS`.

        Returns
        -------
        list of dict
            The :meth:`RunningMetrics.update` entries, one per producer batch.
        """
        markers = rows[rows["image_id"].isna()]
        for seq, reason in zip(markers["seq"].tolist(), markers["error"].tolist()):
            self.skipped.append({"seq": int(seq), "reason": str(reason)})
            self.emit(f"batch seq={int(seq):>5} SKIPPED: {reason}")
        images = rows[rows["image_id"].notna()]
        entries = []
        for seq, group in images.groupby("seq", sort=True):
            features = np.stack([np.asarray(v, np.float32) for v in group["features"]])
            sift = list(group["sift"]) if self.model.config.sift else None
            predicted = self.model.predict(features, sift)
            entry = self.running.update(group["label"].to_numpy(np.int64), predicted, seq=int(seq))
            self.emit(per_batch_line(entry))
            entries.append(entry)
        self.n_micro_batches += 1
        return entries

    def foreach_batch(self, df, batch_id: int) -> None:
        """``DataStreamWriter.foreachBatch`` callback (idempotent per batch id)."""
        if batch_id in self._done_batch_ids:
            log.info("micro-batch %d was already predicted; ignoring its replay", batch_id)
            return
        self.process(df.select(*COLUMNS).toPandas())
        self._done_batch_ids.add(batch_id)

    @property
    def history(self) -> list[dict]:
        return self.running.history

    def report(self, **extra: Any) -> dict:
        """Final metrics over every predicted image, with skips, history and timing."""
        if not self.running.history:
            raise RuntimeError("no image was predicted: the stream delivered no images"
                               + (f" ({len(self.skipped)} bad batches skipped)" if self.skipped else ""))
        seconds = time.perf_counter() - self._started
        report = self.running.final()
        report.update({
            "skipped_batches": self.skipped,
            "n_skipped_batches": len(self.skipped),
            "batches": self.running.history,
            "seconds": seconds,
            "images_per_s": report["n_images"] / seconds if seconds > 0 else 0.0,
        })
        report.update(extra)
        return report
