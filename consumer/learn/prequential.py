"""Prequential ("test-then-train") running metrics while ``chestct train`` streams.

Every producer batch is first predicted by the model as it stands (when there is one),
which updates a :class:`consumer.evaluate.metrics.RunningMetrics`, and only then trained on. The
running numbers are therefore always measured on images the model had not seen yet.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..evaluate.metrics import RunningMetrics


class PrequentialTrainer:
    """Test-then-train over producer batches around an :class:`~consumer.learn.incremental.IncrementalTrainer`.

    Parameters
    ----------
    trainer : consumer.learn.incremental.IncrementalTrainer
        Trained on each batch after the batch is predicted.
    clock : callable, optional
        Seconds source for images/s (``time.perf_counter``); injectable for tests.

    Attributes
    ----------
    history : list of dict
        One :meth:`step` entry per producer batch.
    """

    def __init__(self, trainer: Any, clock: Callable[[], float] = time.perf_counter):
        self.trainer = trainer
        self.running = RunningMetrics(trainer.classes, clock=clock)
        self.history: list[dict] = []
        self.n_images = 0
        self._clock = clock
        self._start = clock()

    @property
    def config(self):
        return self.trainer.config

    def step(self, features: np.ndarray, labels: np.ndarray, sift=None, seq: int | None = None) -> dict:
        """Predict one producer batch with the current model, then train on it.

        Parameters
        ----------
        features : ndarray, shape (N, n_features)
        labels : ndarray of int, shape (N,)
        sift : sequence of bytes or None, optional
            Each image's descriptors (required when SIFT is on).
        seq : int, optional
            The producer batch's seq (default: its position in :attr:`history`).

        Returns
        -------
        dict
            ``seq``, ``batch_size``, ``n_images`` (trained on so far), ``n_evaluated``
            (predicted before training so far), ``has_model`` (False before the first
            model: no metrics then), ``accuracy``, ``macro_precision``, ``macro_recall``,
            ``macro_f1`` (once any image was predicted), ``batch_accuracy`` (when this
            batch was predicted), ``model_updated`` and
            ``images_per_s`` (images trained on over seconds since this object was made).
        """
        labels = np.asarray(labels, np.int64)
        seq = len(self.history) if seq is None else int(seq)
        entry: dict = {"seq": seq, "batch_size": int(len(labels)), "has_model": self.trainer.model is not None,
                       "n_evaluated": 0}
        if entry["has_model"] and len(labels):
            predicted = self.trainer.model.predict(features, sift)
            entry["batch_accuracy"] = self.running.update(labels, predicted, seq=seq)["batch_accuracy"]
        if self.running.history:
            last = self.running.history[-1]
            entry.update({k: last[k] for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1")})
            entry["n_evaluated"] = last["n_images"]
        entry["model_updated"] = bool(self.trainer.partial_fit(features, labels, sift))
        self.n_images += len(labels)
        entry["n_images"] = self.n_images
        entry["images_per_s"] = self.n_images / max(self._clock() - self._start, 1e-9)
        self.history.append(entry)
        return entry

    def process(self, frame) -> list[dict]:
        """Test-then-train the image rows of one micro-batch, producer batch by producer batch.

        Parameters
        ----------
        frame : pandas.DataFrame
            Columns ``seq``, ``label``, ``features`` and ``sift`` (as
            :func:`consumer.stream.table.training_frame` returns), skip markers already removed.

        Returns
        -------
        list of dict
            The :meth:`step` entries, in seq order.
        """
        entries = []
        for seq, group in frame.groupby("seq", sort=True):
            features = np.stack([np.asarray(v, np.float32) for v in group["features"]])
            sift = list(group["sift"]) if self.config.sift else None
            entries.append(self.step(features, group["label"].to_numpy(np.int64), sift, seq=int(seq)))
        return entries

    def final(self) -> dict | None:
        """Metrics over every image predicted before training (None if none was)."""
        return self.running.final() if self.running.history else None
