"""Classification metrics for the consumer: one-shot and running over micro-batches.

The numbers are computed from the confusion matrix and equal scikit-learn's
(``accuracy_score``, ``precision_recall_fscore_support(..., zero_division=0)``,
``confusion_matrix``); a class with no prediction or no true image scores 0 there.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of images of true class ``i`` predicted as class ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes (rows and columns of the matrix).

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
    """
    y_true = _labels(y_true, n_classes, "y_true")
    y_pred = _labels(y_pred, n_classes, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    flat = y_true * n_classes + y_pred
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


#: Which classes a macro average runs over: those with true images (the final report), or
#: those with true or predicted images (a running window, where some classes have not
#: arrived yet but a wrong prediction of one must still count).
AVERAGE_OVER = ("support", "present")


def metrics_from_confusion(cm: np.ndarray, classes: Sequence[str], average_over: str = "support") -> dict:
    """Accuracy, macro and per-class precision/recall/F1 from a confusion matrix.

    Parameters
    ----------
    cm : ndarray, shape (n_classes, n_classes)
    classes : sequence of str
    average_over : {"support", "present"}
        Classes the macro averages run over (see :data:`AVERAGE_OVER`); every class when
        none qualifies (an empty matrix).

    Returns
    -------
    dict
        Keys ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``averaged_over`` (class names), ``per_class`` ({name: {precision, recall, f1,
        support}}), ``confusion_matrix`` (list of lists), ``classes`` and ``n_images``.
    """
    if average_over not in AVERAGE_OVER:
        raise ValueError(f"average_over must be one of {', '.join(AVERAGE_OVER)}, got {average_over!r}")
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    n_images = int(cm.sum())
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    counted = support > 0 if average_over == "support" else (support + predicted) > 0
    if not counted.any():
        counted = np.ones(len(support), bool)
    return {
        "accuracy": float(tp.sum() / n_images) if n_images else 0.0,
        "macro_precision": float(precision[counted].mean()),
        "macro_recall": float(recall[counted].mean()),
        "macro_f1": float(f1[counted].mean()),
        "averaged_over": [name for name, c in zip(classes, counted) if c],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
        "n_images": n_images,
    }


def classification_metrics(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Metrics of predictions ``y_pred`` against labels ``y_true`` (class indices).

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices into ``classes``.
    classes : sequence of str
        Class names, index order.

    Returns
    -------
    dict
        See :func:`metrics_from_confusion`.
    """
    classes = list(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(classes)), classes)


class RunningMetrics:
    """Metrics accumulated batch by batch over a prediction stream.

    Parameters
    ----------
    classes : sequence of str
        Class names, index order.
    clock : callable, optional
        Seconds source for images/s (``time.perf_counter``); injectable for tests.
    """

    def __init__(self, classes: Sequence[str], clock=time.perf_counter):
        self.classes = list(classes)
        if not self.classes:
            raise ValueError("classes must not be empty")
        self._cm = np.zeros((len(self.classes), len(self.classes)), np.int64)
        self._clock = clock
        self._start = clock()
        self.history: list[dict] = []

    def update(self, y_true, y_pred, seq: int | None = None) -> dict:
        """Add one batch; return the running metrics after it.

        Returns
        -------
        dict
            ``seq``, ``batch_size``, ``n_images`` (so far), ``batch_accuracy``, running
            ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1`` (averaged over
            the classes present so far, true or predicted) and ``images_per_s`` (images so
            far over seconds since this object was made). The same dict is appended to
            :attr:`history`.
        """
        batch_cm = confusion_matrix(y_true, y_pred, len(self.classes))
        self._cm += batch_cm
        running = metrics_from_confusion(self._cm, self.classes, average_over="present")
        batch_size = int(batch_cm.sum())
        elapsed = max(self._clock() - self._start, 1e-9)
        entry = {
            "seq": len(self.history) if seq is None else int(seq),
            "batch_size": batch_size,
            "n_images": running["n_images"],
            "batch_accuracy": float(np.trace(batch_cm) / batch_size) if batch_size else 0.0,
            "accuracy": running["accuracy"],
            "macro_precision": running["macro_precision"],
            "macro_recall": running["macro_recall"],
            "macro_f1": running["macro_f1"],
            "images_per_s": running["n_images"] / elapsed,
        }
        self.history.append(entry)
        return entry

    def final(self) -> dict:
        """Metrics over every image seen so far (:func:`classification_metrics` layout)."""
        return metrics_from_confusion(self._cm, self.classes)


def _labels(values, n_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices, got {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(f"{name} holds class indices outside [0, {n_classes}): "
                         f"min {arr.min()}, max {arr.max()}")
    return arr.astype(np.int64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out
