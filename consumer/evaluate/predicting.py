"""Prediction as the stream flows: a ``foreachBatch`` sink with running metrics.

Each Spark micro-batch (rows of the feature stage) is split into its producer batches
(by ``seq``, in order); each is predicted and folded into
:class:`consumer.evaluate.metrics.RunningMetrics`, which prints one line per producer batch. Marker
rows of skipped bad batches are counted, not predicted.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from ..stream.table import skip_reason
from .metrics import RunningMetrics
from .report import per_batch_line

log = logging.getLogger("chestct.predict")

COLUMNS = ("seq", "image_id", "label", "features", "sift", "error")


class StreamPredictor:
    """Predicts micro-batches with a :class:`consumer.learn.model.TrainedModel`.

    Parameters
    ----------
    model : consumer.learn.model.TrainedModel
    emit : callable
        Gets each per-batch metrics line (default: logged at INFO).
    version : str, optional
        The model's published version (each entry and the report name it).
    follower : consumer.evaluate.follower.ModelFollower, optional
        Checked before each micro-batch: a newer version replaces the model.
    """

    def __init__(self, model: Any, emit: Callable[[str], None] | None = None, version: str | None = None,
                 follower: Any = None):
        self.model = model
        self.version = version
        self.follower = follower
        #: ``{"version", "from_seq"}`` each time the predicting model changed (the first included).
        self.switches: list[dict] = [] if version is None else [{"version": version, "from_seq": None}]
        self.running = RunningMetrics(model.classes)
        self.skipped: list[dict] = []
        self.skipped_files: list[dict] = []
        self.emit = emit or log.info
        self.n_micro_batches = 0
        self._done_batch_ids: set[int] = set()
        self._started = time.perf_counter()

    def process(self, rows) -> list[dict]:
        """Predict one micro-batch given as a pandas DataFrame with (at least) :data:`COLUMNS`.

        Returns
        -------
        list of dict
            The :meth:`RunningMetrics.update` entries, one per producer batch.
        """
        markers = rows[rows["image_id"].isna()]
        for seq, reason in zip(markers["seq"].tolist(), markers["error"].tolist()):
            self.skipped.append({"seq": int(seq), "reason": str(reason)})
            self.emit(f"batch seq={int(seq):>5} SKIPPED: {reason}")
        files = rows[rows["image_id"].notna() & rows["features"].isna()]
        for seq, image_id, reason in zip(files["seq"].tolist(), files["image_id"].tolist(),
                                         files["error"].tolist()):
            self.skipped_files.append({"id": str(image_id), "seq": int(seq), "reason": skip_reason(reason)})
        images = rows[rows["features"].notna()]
        entries = []
        for seq, group in images.groupby("seq", sort=True):
            features = np.stack([np.asarray(v, np.float32) for v in group["features"]])
            sift = list(group["sift"]) if self.model.config.sift else None
            predicted = self.model.predict(features, sift)
            entry = self.running.update(group["label"].to_numpy(np.int64), predicted, seq=int(seq))
            if self.version is not None:
                entry["version"] = self.version
            self.emit(per_batch_line(entry))
            entries.append(entry)
        self.n_micro_batches += 1
        return entries

    def foreach_batch(self, df, batch_id: int) -> None:
        """``DataStreamWriter.foreachBatch`` callback (idempotent per batch id)."""
        if batch_id in self._done_batch_ids:
            log.info("micro-batch %d was already predicted; ignoring its replay", batch_id)
            return
        # The micro-batch as it is: a select on top was a query of its own to analyse and plan
        # in the JVM at every micro-batch; process() reads only COLUMNS of it.
        rows = df.toPandas()
        if self.follower is not None:
            self.switch_if_newer(int(rows["seq"].min()) if len(rows) else None)
        self.process(rows)
        self._done_batch_ids.add(batch_id)

    def switch_if_newer(self, from_seq: int | None) -> bool:
        """Take the follower's newer version, if there is one, for the batches from ``from_seq``."""
        found = self.follower.newer()
        if found is None:
            return False
        self.version, self.model = found
        self.switches.append({"version": self.version, "from_seq": from_seq})
        self.emit(f"switched to model version {self.version} from batch seq={from_seq}")
        return True

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
            "skipped_files": self.skipped_files,
            "model_versions": self.switches,
            "n_skipped_files": len(self.skipped_files),
            "batches": self.running.history,
            "seconds": seconds,
            "images_per_s": report["n_images"] / seconds if seconds > 0 else 0.0,
        })
        report.update(extra)
        return report
