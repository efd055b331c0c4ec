"""Show and save a classification report: rich tables, report.json, PNG plots.

A *report* is the dict of :func:`consumer.evaluate.metrics.classification_metrics`, possibly with
extra keys (model, configuration, timings) that :func:`write_report` keeps as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REQUIRED_KEYS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
                 "confusion_matrix", "classes", "n_images")


def per_batch_line(entry: dict) -> str:
    """One log line for a prediction micro-batch.

    Parameters
    ----------
    entry : dict
        A :meth:`consumer.evaluate.metrics.RunningMetrics.update` result.

    Returns
    -------
    str
        ``seq``, images so far, running accuracy, macro P/R/F1 and images/s.
    """
    version = f" model={entry['version']}" if entry.get("version") else ""
    return (f"batch seq={entry['seq']:>5} images={entry['n_images']:>6} "
            f"acc={entry['accuracy']:.3f} P={entry['macro_precision']:.3f} "
            f"R={entry['macro_recall']:.3f} F1={entry['macro_f1']:.3f} "
            f"{entry['images_per_s']:.1f} img/s{version}")


def train_batch_line(entry: dict) -> str:
    """One log line for a producer batch during training (test-then-train).

    Parameters
    ----------
    entry : dict
        A :meth:`consumer.learn.prequential.PrequentialTrainer.step` result.

    Returns
    -------
    str
        ``seq``, images trained on so far, then the running training accuracy and macro
        P/R/F1 over the images predicted before being trained on (or "no model yet"),
        and images/s.
    """
    head = f"train seq={entry['seq']:>5} images={entry['n_images']:>6} "
    if entry["n_evaluated"] == 0:
        scores = "no model yet"
    else:
        scores = (f"acc={entry['accuracy']:.3f} P={entry['macro_precision']:.3f} "
                  f"R={entry['macro_recall']:.3f} F1={entry['macro_f1']:.3f} "
                  f"(on {entry['n_evaluated']} unseen)")
    return head + scores + f" {entry['images_per_s']:.1f} img/s"


def print_report(report: dict, console=None) -> None:
    """Print overall metrics, per-class metrics and the confusion matrix as rich tables.

    Parameters
    ----------
    report : dict
        A :func:`consumer.evaluate.metrics.classification_metrics` result.
    console : rich.console.Console, optional
        Where to print (a new stdout console by default).
    """
    from rich.console import Console
    from rich.table import Table

    _check(report)
    console = console or Console()
    overall = Table(title=f"Overall ({report['n_images']} images)")
    for name in ("accuracy", "macro precision", "macro recall", "macro F1"):
        overall.add_column(name, justify="right")
    overall.add_row(*(f"{report[k]:.3f}" for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1")))

    per_class = Table(title="Per class")
    per_class.add_column("class")
    for name in ("precision", "recall", "F1", "support"):
        per_class.add_column(name, justify="right")
    for name in report["classes"]:
        c = report["per_class"][name]
        per_class.add_row(name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"]))

    confusion = Table(title="Confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("true \\ predicted")
    for name in report["classes"]:
        confusion.add_column(name, justify="right")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        confusion.add_row(name, *(str(v) for v in row))

    for table in (overall, per_class, confusion):
        console.print(table)


def write_report(report: dict, path) -> Path:
    """Write ``report`` as indented JSON (report.json) and return the path."""
    _check(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=_jsonable) + "\n")
    return path


def plot_confusion_matrix(report: dict, png) -> Path:
    """Save the confusion matrix as a heat map with counts, rows normalized for colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _check(report)
    cm = np.asarray(report["confusion_matrix"], dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows != 0)
    classes = report["classes"]
    fig, ax = plt.subplots(figsize=(1.6 * len(classes) + 2.5, 1.4 * len(classes) + 1.5))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
    fig.colorbar(im, ax=ax, label="share of true class")
    fig.tight_layout()
    return _save(fig, png)


def plot_accuracy_over_batches(history: list[dict], png) -> Path:
    """Save running accuracy and macro F1 against images seen so far."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("history is empty: no batch was predicted, nothing to plot")
    n = [h["n_images"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(n, [h["accuracy"] for h in history], marker=".", label="running accuracy")
    ax.plot(n, [h["macro_f1"] for h in history], marker=".", label="running macro F1")
    # A vertical line where a newer model version took over (predict --follow).
    for before, after in zip(history, history[1:]):
        if after.get("version") and before.get("version") and after["version"] != before["version"]:
            ax.axvline(before["n_images"], color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(f"v{after['version'].lstrip('0')}", (before["n_images"], 0.02), fontsize=8,
                        color="grey", rotation=90)
    ax.set_xlabel("images predicted")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, png)


def _save(fig, png) -> Path:
    import matplotlib.pyplot as plt

    path = Path(png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _check(report: dict) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in report]
    if missing:
        raise ValueError(f"report is missing keys {missing}; expected a classification_metrics() dict")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"report value of type {type(value).__name__} is not JSON serializable")
