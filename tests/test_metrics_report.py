"""Metrics equal scikit-learn's; reports render, serialize and plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from consumer.evaluate.metrics import RunningMetrics, classification_metrics
from consumer.evaluate.report import (per_batch_line, plot_accuracy_over_batches, plot_confusion_matrix, print_report,
                             write_report)

CLASSES = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]


def _predictions(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, 4, n))
    y_pred[y_pred == 1] = 3  # class 1 is never predicted: precision 0/0 must follow sklearn
    return y_true, y_pred


def _assert_equals_sklearn(m, y_true, y_pred):
    labels = list(range(len(CLASSES)))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    mp, mr, mf, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                        zero_division=0)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["macro_precision"] == pytest.approx(mp)
    assert m["macro_recall"] == pytest.approx(mr)
    assert m["macro_f1"] == pytest.approx(mf)
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    for i, name in enumerate(CLASSES):
        assert m["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["n_images"] == len(y_true)
    assert m["classes"] == CLASSES


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_sklearn(seed):
    y_true, y_pred = _predictions(seed=seed)
    _assert_equals_sklearn(classification_metrics(y_true, y_pred, CLASSES), y_true, y_pred)


def test_running_metrics_accumulate_to_the_one_shot_result():
    y_true, y_pred = _predictions(n=157)
    ticks = iter(range(100))
    running = RunningMetrics(CLASSES, clock=lambda: float(next(ticks)))
    entries = [running.update(y_true[i:i + 20], y_pred[i:i + 20], seq=i // 20) for i in range(0, 157, 20)]
    assert [e["n_images"] for e in entries] == [min(i + 20, 157) for i in range(0, 157, 20)]
    assert running.history == entries
    _assert_equals_sklearn(running.final(), y_true, y_pred)
    first = entries[0]
    assert first["batch_accuracy"] == pytest.approx(skm.accuracy_score(y_true[:20], y_pred[:20]))
    assert entries[-1]["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert first["images_per_s"] == pytest.approx(20.0)  # 20 images after one fake second


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 4], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="same length"):
        classification_metrics([0, 1], [0], CLASSES)


def test_report_json_table_and_plots(tmp_path):
    from rich.console import Console

    y_true, y_pred = _predictions()
    report = classification_metrics(y_true, y_pred, CLASSES)
    running = RunningMetrics(CLASSES)
    for i in range(0, 200, 50):
        running.update(y_true[i:i + 50], y_pred[i:i + 50])
    report["model"] = {"name": "svm"}

    path = write_report(report, tmp_path / "out" / "report.json")
    loaded = json.loads(path.read_text())
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class", "confusion_matrix",
                "classes", "n_images", "model"):
        assert key in loaded
    assert loaded["macro_f1"] == pytest.approx(report["macro_f1"])

    console = Console(record=True, width=160)
    print_report(report, console=console)
    text = console.export_text()
    assert "macro F1" in text and "squamous.cell.carcinoma" in text and f"{report['accuracy']:.3f}" in text

    for png in (plot_confusion_matrix(report, tmp_path / "cm.png"),
                plot_accuracy_over_batches(running.history, tmp_path / "acc.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5000

    line = per_batch_line(running.history[-1])
    assert "seq=" in line and "images=   200" in line and "img/s" in line


def test_report_errors():
    with pytest.raises(ValueError, match="missing keys"):
        write_report({"accuracy": 1.0}, "unused.json")
    with pytest.raises(ValueError, match="history is empty"):
        plot_accuracy_over_batches([], "unused.png")


def test_running_macro_scores_average_over_the_classes_present_so_far():
    running = RunningMetrics(CLASSES)
    y = np.array([0, 0, 1, 1, 2, 2, 2, 0])  # 8 images of 3 of the 4 classes, all right
    entry = running.update(y, y)
    assert entry["accuracy"] == 1.0 and entry["macro_precision"] == 1.0 and entry["macro_f1"] == 1.0
    # A prediction of the absent class counts: its precision 0 enters the average.
    entry = running.update(np.array([0]), np.array([3]))
    assert entry["macro_precision"] == pytest.approx(np.mean([3 / 3, 1, 1, 0]))


def test_final_macro_scores_average_over_the_classes_with_support():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 3, 1, 1, 2, 0])
    m = classification_metrics(y_true, y_pred, CLASSES)
    present = [0, 1, 2]
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro",
                                                     zero_division=0)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f))
    assert m["averaged_over"] == [CLASSES[i] for i in present]
