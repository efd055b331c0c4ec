"""Publish the model of a running ``chestct train`` as immutable versions (see ``versions``).

A :class:`Publisher` publishes every ``every`` images, at the end of a finite stream and
on Ctrl-C. Each version's ``model.json`` records, under ``version``: its name, its parent,
the images seen, the seq range of the stream it learned from, and its prequential
(test-then-train) metrics. A restarted train resumes from the latest version.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from ..console import interrupt_deferred
from . import versions
from .model import TrainedModel

log = logging.getLogger("chestct.train")

#: Prequential numbers copied into a version's manifest.
_METRIC_KEYS = ("n_images", "accuracy", "macro_precision", "macro_recall", "macro_f1")


class Publisher:
    """Publishes model versions under ``save_path``.

    Parameters
    ----------
    save_path : path
        Where ``versions/`` and ``LATEST`` live.
    every : int or None
        Publish each time this many more images were trained on (None: only at the end).
    describe : mapping
        Extra metadata every version records (the stream's identity and preprocessing).
    clock : callable
        Wall-clock seconds, for ``published_at``.
    key : bytes, optional
        Sign every version (and verify the one resumed from) with it.
    on_publish : callable, optional
        ``on_publish(folder, model)`` after each version appeared (e.g. to register it in MLflow).
    """

    def __init__(self, save_path, every: int | None, describe: dict, clock: Callable[[], float] = time.time,
                 key: bytes | None = None, on_publish: Callable[[Path, TrainedModel], None] | None = None):
        if every is not None and every < 1:
            raise ValueError(f"publish every must be >= 1 image, got {every}")
        self.save_path = save_path
        self.every = every
        self.describe = dict(describe)
        self.clock = clock
        self.key = key
        self.on_publish = on_publish
        self.parent: str | None = None
        self.seq_first: int | None = None
        self.published_images = 0
        self.names: list[str] = []

    def resume(self, trainer: Any, read_window: Callable[[int, int], Any]) -> int:
        """Continue from the latest version, if any; return the first seq still to train on.

        Parameters
        ----------
        trainer : consumer.learn.incremental.IncrementalTrainer
        read_window : callable
            ``read_window(seq_last, images)`` -> (features, labels, sift) of the table's last
            ``images`` images with ``seq <= seq_last`` (for svm/rf).
        """
        name = versions.repair_pointer(self.save_path)
        if name is None:
            return 0
        model = TrainedModel.load(versions.resolve(self.save_path), key=self.key)
        record = model.meta.get("version") or {}
        if model.meta["feature_config"] != trainer.config.to_dict() or model.meta["model"] != trainer.model_name:
            raise ValueError(f"{self.save_path} holds versions of another model or feature configuration "
                             f"({model.meta['model']}, {model.meta['feature_config']['features']}); "
                             f"train into a new --save-path")
        seq_last = int(record.get("seq_last", -1))
        window = trainer.window or int(record.get("images_seen", 0)) or 1
        rows = read_window(seq_last, window) if trainer.model_name != "sgd" and seq_last >= 0 else None
        trainer.resume(model, int(record.get("images_seen", model.meta.get("n_train_images", 0))), rows)
        self.parent = name
        self.seq_first = record.get("seq_first")
        self.published_images = trainer.n_images
        log.info("resuming from version %s (%d images, up to seq %d)", name, trainer.n_images, seq_last)
        return seq_last + 1

    def due(self, trainer: Any) -> bool:
        """Whether ``every`` more images were trained on since the last version."""
        return self.every is not None and trainer.n_images - self.published_images >= self.every

    def publish(self, model: TrainedModel, *, images_seen: int, seq_last: int, prequential: dict | None) -> str:
        """Publish ``model`` as the next version; return its name."""
        model.meta.update(self.describe)
        model.meta["version"] = {
            "parent": self.parent,
            "images_seen": int(images_seen),
            "seq_first": self.seq_first if self.seq_first is not None else 0,
            "seq_last": int(seq_last),
            "prequential": {k: prequential[k] for k in _METRIC_KEYS if k in prequential} if prequential else None,
            "published_at": self.clock(),
        }
        # A Ctrl-C landing between the folder appearing and ``parent`` moving on would make
        # the final version on the way out name the one before as its parent: hold it (a
        # second Ctrl-C still stops at once).
        with interrupt_deferred():
            name = versions.publish(self.save_path, lambda folder: model.save(folder, key=self.key))
            self.parent = name
            self.published_images = int(images_seen)
            self.names.append(name)
            if self.on_publish is not None:
                self.on_publish(Path(self.save_path) / versions.VERSIONS_DIR / name, model)
        return name
