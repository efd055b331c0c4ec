#!/usr/bin/env python
"""How much the chosen model's test macro-F1 drops under plausible acquisition changes.

The test split is re-rendered once per perturbation (seeded, one draw per image) into
``--out/<perturbation>/test/<class folder>/`` with the dataset's layout, every picture
is decoded back through the producer's own ``read_checked`` + ``decode`` with the
chosen ``Preprocessing``, and the model trained on the train split (select_model's
``CHOSEN``) scores it. The report gives each perturbation's macro-F1 and its drop
against the unperturbed test split.

Perturbations (applied to the decoded picture, alpha dropped, 16-bit scaled to 8):

* ``contrast``: levels times U(0.85, 1.15) plus U(-15, 15);
* ``gamma``: levels ** U(0.8, 1.25) on [0, 1];
* ``rotation``: U(-5, 5) degrees about the centre, black fill;
* ``noise``: Gaussian sensor noise, sigma 5 levels;
* ``jpeg``: saved as JPEG, quality U(60, 85);
* ``all``: all of the above in that order.

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
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import select_model as sm  # noqa: E402
from consumer.evaluate.metrics import classification_metrics  # noqa: E402

CONTRAST = (0.85, 1.15)
BRIGHTNESS = (-15.0, 15.0)
GAMMA = (0.8, 1.25)
ROTATION_DEGREES = 5.0
NOISE_SIGMA = 5.0
JPEG_QUALITY = (60, 85)
#: Largest acceptable macro-F1 drop (the target the report checks).
MAX_DROP = 0.03


def _levels(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.astype(np.float32) * rng.uniform(*CONTRAST) + rng.uniform(*BRIGHTNESS)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    lut = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(*GAMMA)).round().astype(np.uint8)
    return cv2.LUT(image, lut)


def _rotation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES), 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.astype(np.float32) + rng.normal(0, NOISE_SIGMA, image.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


#: Pixel perturbations; ``jpeg`` is the file format, applied when the picture is written.
PIXEL_STEPS: dict[str, Callable] = {"contrast": _levels, "gamma": _gamma, "rotation": _rotation, "noise": _noise}
PERTURBATIONS = (*PIXEL_STEPS, "jpeg", "all")


def picture(path: Path) -> np.ndarray:
    """The 8-bit grey or BGR pixels of ``path`` as the producer sees them (alpha dropped)."""
    import cv2

    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"OpenCV cannot decode {path}")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def render(source: Path, target: Path, perturbation: str, rng: np.random.Generator) -> Path:
    """Write ``source`` perturbed under ``target`` (suffix .jpg for JPEG); returns the file written."""
    import cv2

    image = picture(source)
    steps = PIXEL_STEPS if perturbation == "all" else {k: v for k, v in PIXEL_STEPS.items() if k == perturbation}
    for step in steps.values():
        image = step(image, rng)
    target.parent.mkdir(parents=True, exist_ok=True)
    if perturbation in ("jpeg", "all"):
        path = target.with_suffix(".jpg")
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*JPEG_QUALITY, endpoint=True))])
    else:
        path = target.with_suffix(".png")
        ok = cv2.imwrite(str(path), image)
    if not ok:
        raise SystemExit(f"cannot write {path}")
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
    cand = sm.CHOSEN
    ds, X = sm.candidate_matrix(cand, data, cache, backend, jobs=1)
    model = sm.fit_chosen(ds, X, cand)
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
                          "features": cand.config.to_dict()},
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
