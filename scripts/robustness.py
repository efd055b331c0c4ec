#!/usr/bin/env python
"""How much the chosen model's test macro-F1 drops under plausible acquisition changes.

The test split is re-rendered once per perturbation (seeded, one draw per image) into
``--out/<perturbation>/test/<class folder>/`` with the dataset's layout, every picture
is decoded back through the producer's own ``read_checked`` + ``decode`` with the
chosen ``Preprocessing``, and the model trained on the train split (select_model's
``CHOSEN``) scores it. The report gives each perturbation's macro-F1 and its drop
against the unperturbed test split.

Perturbations: those of :mod:`producer.augment` (their owner; the producer's augmented
training copies draw them with other seeds): ``contrast``, ``gamma``, ``rotation``,
``noise``, ``jpeg`` and ``all``.

Usage::

    CHESTCT_DATA=/path/to/chest-ctscan python scripts/robustness.py [--out DIR] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import select_model as sm  # noqa: E402
from producer import augment  # noqa: E402
from consumer.evaluate.metrics import classification_metrics  # noqa: E402

#: Largest acceptable macro-F1 drop (the target the report checks).
MAX_DROP = 0.03
PIXEL_STEPS = augment.PIXEL_STEPS
PERTURBATIONS = augment.PERTURBATIONS


def picture(path: Path) -> np.ndarray:
    """The 8-bit grey or BGR pixels of ``path`` as the producer sees them (alpha dropped)."""
    try:
        return augment.picture(path.read_bytes())
    except ValueError:
        raise SystemExit(f"OpenCV cannot decode {path}") from None


def render(source: Path, target: Path, perturbation: str, rng: np.random.Generator) -> Path:
    """Write ``source`` perturbed under ``target`` (suffix .jpg for JPEG); returns the file written."""
    image, quality = augment.perturb(picture(source), perturbation, rng)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.with_suffix(".png" if quality is None else ".jpg")
    try:
        path.write_bytes(augment.encode(image, quality))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot write {path}: {exc}") from None
    return path


def render_split(data: Path, out: Path, perturbation: str, seed: int,
                 splits: tuple[str, ...] = ("test",)) -> list[tuple[str, Path]]:
    """``splits`` re-rendered under ``out/<perturbation>/<split>``: (class, path) per image, sorted."""
    from tqdm import tqdm

    entries = [e for e in sm.list_images(data) if e[0] in splits]
    index = PERTURBATIONS.index(perturbation)
    rendered = []
    for i, (split, klass, path) in enumerate(tqdm(entries, desc=f"render {perturbation}", unit="img")):
        rng = np.random.default_rng([seed, index, i])
        target = out / perturbation / split / path.parent.name / path.name
        rendered.append((klass, render(path, target, perturbation, rng)))
    return rendered


def score_files(model, files: list[tuple[str, Path]], classes: list[str], cand: sm.Candidate,
                backend: str) -> dict:
    """Macro-F1 of ``model`` on ``files`` decoded through the producer's preprocessing."""
    prep = sm.preprocessing(cand.size, cand.framing)
    images = np.stack([sm.decode(path, prep)[0] for _, path in files])
    X = sm.feature_matrix(images, cand, backend)
    y = np.array([classes.index(k) for k, _ in files])
    return classification_metrics(y, model.predict(X), classes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("CHESTCT_DATA"),
                        help="dataset folder with train/valid/test (default: $CHESTCT_DATA)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the re-rendered splits (default: a temporary folder, removed after)")
    parser.add_argument("--cache", type=Path, default=ROOT / "work" / "select", help="select_model's cache")
    parser.add_argument("--backend", choices=("rust", "skimage"), default="rust", help="feature kernels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbation draws")
    parser.add_argument("--only", nargs="*", choices=PERTURBATIONS, help="run only these perturbations")
    parser.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.data is None or not (Path(args.data) / "test").is_dir():
        parser.error("set CHESTCT_DATA or --data to a dataset folder with train/ and test/")
    return args


def run(data: Path, out: Path, cache: Path, backend: str, seed: int, perturbations) -> dict:
    import select_robust

    cand = sm.CHOSEN
    ds, X = sm.candidate_matrix(cand, data, cache, backend, jobs=1)
    # The chosen configuration trains with augmented copies of the train split (drawn with
    # seeds apart from --seed's evaluation draws, which only ever render the test split).
    model = sm.fit_chosen(ds, X, cand, augment=select_robust.augmented_matrices(cand, data, cache, backend, jobs=1))
    test = np.where(ds.splits == "test")[0]
    base = classification_metrics(ds.labels[test], model.predict(X[test]), ds.classes)
    rows = {}
    for name in perturbations:
        m = score_files(model, render_split(data, out, name, seed), ds.classes, cand, backend)
        rows[name] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "drop": base["macro_f1"] - m["macro_f1"],
                      "per_class_f1": {k: v["f1"] for k, v in m["per_class"].items()}}
        print(f"{name:>9}: macro-F1 {m['macro_f1']:.3f} (drop {rows[name]['drop']:+.3f})", flush=True)
    worst = max(r["drop"] for r in rows.values()) if rows else 0.0
    return {"candidate": {"size": cand.size, "framing": cand.framing, "model": cand.model, "params": cand.params,
                          "features": cand.config.to_dict(), "augment": [list(a) for a in cand.augment]},
            "seed": seed, "unperturbed": {"macro_f1": base["macro_f1"], "accuracy": base["accuracy"]},
            "perturbations": rows, "worst_drop": worst, "max_drop_target": MAX_DROP,
            "within_target": bool(worst <= MAX_DROP)}


def main(argv=None) -> int:
    args = parse_args(argv)
    perturbations = args.only or PERTURBATIONS
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="chestct-robustness-") as tmp:
            report = run(args.data, Path(tmp), args.cache, args.backend, args.seed, perturbations)
    else:
        report = run(args.data, args.out, args.cache, args.backend, args.seed, perturbations)
    print(f"unperturbed test macro-F1 {report['unperturbed']['macro_f1']:.3f}; worst drop "
          f"{report['worst_drop']:+.3f} (target <= {MAX_DROP}): {'met' if report['within_target'] else 'NOT met'}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
