#!/usr/bin/env python
"""Choose the consumer's default image size, features and model by cross-validation.

Only the training data take part in the choice: train + valid, split by
StratifiedGroupKFold (5 folds, several shuffles) where a group joins exact duplicates
(same decoded pixels) and near duplicates (neighbouring slices of one scan: Pearson
correlation >= 0.90 of 32x32 thumbnails), so no image has a twin on the other side of
a fold. A second view trains on train and scores valid. ``--final`` then trains the
library defaults on the train split (what the streaming pipeline does) and scores the
test split once.

Images are decoded as the producer does: OpenCV ``IMREAD_GRAYSCALE`` (alpha dropped,
BGR to grey) and ``cv2.resize(..., INTER_AREA)`` to a square. Decoded images, features
and SIFT descriptors are cached under ``--cache`` (default ``work/select``, git-ignored).

Usage::

    CHESTCT_DATA=/path/to/chest-ctscan python scripts/select_model.py            # CV table
    CHESTCT_DATA=/path/to/chest-ctscan python scripts/select_model.py --final    # + test once
    CHESTCT_DATA=/path/to/chest-ctscan python scripts/select_model.py --no-cv --final
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer import features as feats  # noqa: E402
from consumer.features import sift_bow  # noqa: E402
from consumer.features import FeatureConfig  # noqa: E402
from consumer.evaluate.metrics import classification_metrics  # noqa: E402
from consumer.learn.estimators import DEFAULT_MODEL, build_estimator  # noqa: E402

SPLITS = ("train", "valid", "test")
NEAR_DUPLICATE_CORRELATION = 0.90
N_FOLDS = 5


# -- data ----------------------------------------------------------------------------------
@dataclass
class Dataset:
    images: np.ndarray   # (N, S, S) uint8
    labels: np.ndarray   # (N,) class index
    splits: np.ndarray   # (N,) "train" | "valid" | "test"
    hashes: np.ndarray   # (N,) sha256 of the decoded full-size pixels
    classes: list[str]


def class_of(folder: str) -> str:
    """Class name of a split folder: the name up to the first "_"."""
    return folder.split("_", 1)[0]


def list_images(data: Path) -> list[tuple[str, str, Path]]:
    """(split, class, path) of every image, sorted."""
    out = []
    for split in SPLITS:
        for folder in sorted(p for p in (data / split).iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                    out.append((split, class_of(folder.name), path))
    if not out:
        raise SystemExit(f"no images under {data}/{{train,valid,test}}/<class>/")
    return out


def decode(path: Path, size: int) -> tuple[np.ndarray, str]:
    """The producer's grey image at ``size`` x ``size`` and the hash of the decoded pixels."""
    import cv2

    data = np.frombuffer(path.read_bytes(), np.uint8)
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if full is None:
        raise SystemExit(f"OpenCV cannot decode {path}")
    digest = hashlib.sha256(full.tobytes() + repr(full.shape).encode()).hexdigest()
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA), digest


def load_dataset(data: Path, size: int, cache: Path) -> Dataset:
    """All splits decoded at ``size``; cached as an .npz keyed by the size."""
    from tqdm import tqdm

    path = cache / f"images_{size}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return Dataset(z["images"], z["labels"], z["splits"], z["hashes"], [str(c) for c in z["classes"]])
    entries = list_images(data)
    classes = sorted({c for _, c, _ in entries})
    images, hashes = [], []
    for _, _, p in tqdm(entries, desc=f"decode {size}x{size}", unit="img"):
        img, digest = decode(p, size)
        images.append(img)
        hashes.append(digest)
    ds = Dataset(np.stack(images), np.array([classes.index(c) for _, c, _ in entries]),
                 np.array([s for s, _, _ in entries]), np.array(hashes), classes)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=ds.images, labels=ds.labels, splits=ds.splits, hashes=ds.hashes,
             classes=np.array(classes))
    return ds


def duplicate_groups(ds: Dataset, thumbs: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Group id per image of ``index``: exact and near duplicates share a group."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    same = ds.hashes[index][:, None] == ds.hashes[index][None, :]
    x = thumbs[index].reshape(len(index), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    same |= (x @ x.T) >= NEAR_DUPLICATE_CORRELATION
    return connected_components(csr_matrix(same), directed=False)[1]


# -- features --------------------------------------------------------------------------
def family_config(config: FeatureConfig, family: str) -> dict:
    """The options of ``config`` that shape one family's block (its cache key)."""
    return {k: v for k, v in config.to_dict().items() if k.startswith(family + ".")}


def family_block(ds: Dataset, size: int, config: FeatureConfig, family: str, cache: Path,
                 backend: str, jobs: int) -> np.ndarray:
    """Features of one fixed-length family for every image, cached on disk."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    key = json.dumps({"size": size, "family": family, **family_config(config, family)}, sort_keys=True)
    path = cache / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    single = FeatureConfig.from_dict({**config.to_dict(), "features": [family]})
    chunks = np.array_split(np.arange(len(ds.images)), max(8, 4 * jobs))
    work = tqdm(chunks, desc=f"{family} {size}x{size}", unit="chunk")
    parts = Parallel(n_jobs=jobs, max_nbytes=None)(
        delayed(feats.extract)(ds.images[c], single, backend=backend) for c in work)
    block = np.vstack(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, block, allow_pickle=False)
    (path.with_suffix(".json")).write_text(key + "\n")
    return block


def sift_descriptors(ds: Dataset, size: int, config: FeatureConfig, cache: Path) -> list[np.ndarray]:
    """SIFT descriptors of every image (cached as one array plus offsets)."""
    from tqdm import tqdm

    key = json.dumps({"size": size, **{k: v for k, v in family_config(config, "sift").items()
                                       if k != "sift.n_words"}}, sort_keys=True)
    path = cache / "features" / f"sift-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return np.split(z["descriptors"], z["offsets"][1:-1])
    arrays = [sift_bow.descriptors(img, config) for img in tqdm(ds.images, desc=f"sift {size}x{size}", unit="img")]
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, descriptors=np.concatenate(arrays), offsets=offsets)
    return arrays


# -- candidates --------------------------------------------------------------------------
@dataclass
class Candidate:
    name: str
    size: int
    config: FeatureConfig
    model: str = "svm"
    params: dict = field(default_factory=dict)


def _cfg(features, **kw) -> FeatureConfig:
    return FeatureConfig(features=tuple(features), **kw)


def candidates() -> list[Candidate]:
    """The configurations compared (see docs/model-selection.md for the reasoning)."""
    hog32 = dict(hog_pixels_per_cell=(8,), hog_cells_per_block=3)          # the earlier study's best
    hog_q = {128: dict(hog_pixels_per_cell=(32,), hog_cells_per_block=3),  # 4x4 cells at any size
             256: dict(hog_pixels_per_cell=(64,), hog_cells_per_block=3)}
    flat = dict(lbp_grid=1, glcm_grid=1)
    out = [
        Candidate("hog 32px (earlier study)", 32, _cfg(["hog"], **hog32)),
        Candidate("hog+lbp+glcm+gabor 128px, no grid", 128, _cfg(["hog", "lbp", "glcm", "gabor"], **hog_q[128],
                                                                  **flat)),
    ]
    for size in (128, 256):
        out += [
            Candidate(f"hog 4x4 cells {size}px", size, _cfg(["hog"], **hog_q[size])),
            Candidate(f"lbp 3 radii {size}px, no grid", size, _cfg(["lbp"], lbp_grid=1)),
            Candidate(f"lbp 3 radii {size}px, grid 3", size, _cfg(["lbp"], lbp_grid=3)),
            Candidate(f"glcm 32 levels {size}px, no grid", size, _cfg(["glcm"], glcm_grid=1)),
            Candidate(f"glcm 32 levels {size}px, grid 2", size, _cfg(["glcm"], glcm_grid=2)),
            Candidate(f"hog+lbp+glcm {size}px, no grid", size, _cfg(["hog", "lbp", "glcm"], **hog_q[size], **flat)),
            Candidate(f"hog+lbp+glcm {size}px, grids 3/2", size, _cfg(["hog", "lbp", "glcm"], **hog_q[size])),
        ]
    out += [
        Candidate("gabor 128px", 128, _cfg(["gabor"])),
        Candidate("hog+lbp+glcm+gabor(128px) grids 3/2", 128, _cfg(["hog", "lbp", "glcm", "gabor"], **hog_q[128])),
        Candidate("hog+lbp+glcm 256px, grids 3/3", 256, _cfg(["hog", "lbp", "glcm"], **hog_q[256], glcm_grid=3)),
        Candidate("hog+lbp+glcm 256px, grids 4/2", 256, _cfg(["hog", "lbp", "glcm"], **hog_q[256], lbp_grid=4)),
        Candidate("hog 2 scales+lbp+glcm 256px", 256, _cfg(["hog", "lbp", "glcm"], hog_pixels_per_cell=(32, 64),
                                                           hog_cells_per_block=3)),
        Candidate("sift bow 100 words 256px", 256, _cfg(["sift"])),
        Candidate("hog+lbp+glcm+sift 256px", 256, _cfg(["hog", "lbp", "glcm", "sift"], **hog_q[256])),
    ]
    best = _cfg(["hog", "lbp", "glcm"], **hog_q[256])
    for C in (1.0, 3.0, 30.0):
        out.append(Candidate(f"hog+lbp+glcm 256px, svm C={C:g}", 256, best, "svm", {"C": C}))
    out.append(Candidate("hog+lbp+glcm 256px, svm no class weight", 256, best, "svm", {"class_weight": None}))
    out.append(Candidate("hog+lbp+glcm 256px, rf 500", 256, best, "rf", {"n_jobs": 2}))
    out.append(Candidate("hog+lbp+glcm 256px, rf 1000 leaf 2", 256, best, "rf",
                         {"n_estimators": 1000, "min_samples_leaf": 2, "n_jobs": 2}))
    out.append(Candidate("hog+lbp+glcm 256px, sgd", 256, best, "sgd"))
    return out


def default_candidate() -> Candidate:
    """What the library does with no flags."""
    height, width = 256, 256  # the producer's default image size
    if height != width:
        raise SystemExit(f"the selection decodes square images; DEFAULT_IMAGE_SIZE is {height}x{width}")
    return Candidate("library defaults", height, FeatureConfig(), DEFAULT_MODEL)


# -- evaluation ---------------------------------------------------------------------------
def design(blocks: np.ndarray, sift: list[np.ndarray] | None, config: FeatureConfig, train_idx, test_idx,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test design matrices; the SIFT codebook is learned on the training side only."""
    if sift is None:
        return blocks[train_idx], blocks[test_idx]
    codebook = sift_bow.learn_codebook([sift[i] for i in train_idx], config.sift_n_words, seed)
    bow_tr = sift_bow.encode([sift[i] for i in train_idx], codebook)
    bow_te = sift_bow.encode([sift[i] for i in test_idx], codebook)
    return np.hstack([blocks[train_idx], bow_tr]), np.hstack([blocks[test_idx], bow_te])


def score(cand: Candidate, X: np.ndarray, sift, y: np.ndarray, train_idx, test_idx, seed: int, classes) -> dict:
    Xtr, Xte = design(X, sift, cand.config, train_idx, test_idx, seed)
    model = build_estimator(cand.model, cand.params, seed).fit(Xtr, y[train_idx])
    return classification_metrics(y[test_idx], model.predict(Xte), classes)


def evaluate(cand: Candidate, ds: Dataset, X: np.ndarray, sift, groups: np.ndarray, seeds) -> dict:
    from sklearn.model_selection import StratifiedGroupKFold

    dev = np.where(ds.splits != "test")[0]
    f1s, accs = [], []
    for seed in seeds:
        folds = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=seed).split(dev, ds.labels[dev], groups)
        for tr, te in folds:
            m = score(cand, X, sift, ds.labels, dev[tr], dev[te], seed, ds.classes)
            f1s.append(m["macro_f1"])
            accs.append(m["accuracy"])
    train = np.where(ds.splits == "train")[0]
    valid = np.where(ds.splits == "valid")[0]
    v = score(cand, X, sift, ds.labels, train, valid, seeds[0], ds.classes)
    return {"name": cand.name, "size": cand.size, "model": cand.model, "params": cand.params,
            "features": cand.config.to_dict(), "dims": int(X.shape[1]) + (cand.config.sift_n_words if sift else 0),
            "cv_macro_f1": float(np.mean(f1s)), "cv_macro_f1_std": float(np.std(f1s)),
            "cv_accuracy": float(np.mean(accs)), "valid_macro_f1": v["macro_f1"], "valid_accuracy": v["accuracy"]}


def candidate_matrix(cand: Candidate, data: Path, cache: Path, backend: str, jobs: int):
    ds = load_dataset(data, cand.size, cache)
    fixed = [f for f in cand.config.features if f in feats.FIXED_FAMILIES]
    blocks = [family_block(ds, cand.size, cand.config, f, cache, backend, jobs) for f in fixed]
    X = np.hstack(blocks) if blocks else np.zeros((len(ds.images), 0), np.float32)
    sift = sift_descriptors(ds, cand.size, cand.config, cache) if cand.config.sift else None
    return ds, X, sift


# -- main ---------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("CHESTCT_DATA"),
                        help="dataset folder with train/valid/test (default: $CHESTCT_DATA)")
    parser.add_argument("--cache", type=Path, default=ROOT / "work" / "select", help="cache folder (git-ignored)")
    parser.add_argument("--backend", choices=feats.BACKENDS, default="skimage", help="feature kernels")
    parser.add_argument("--jobs", type=int, default=2, help="processes for feature extraction")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="CV shuffles")
    parser.add_argument("--only", nargs="*", help="evaluate only candidates whose name contains one of these")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation table")
    parser.add_argument("--final", action="store_true",
                        help="after the CV table, train the library defaults on train and score test once")
    args = parser.parse_args(argv)
    if args.data is None or not (Path(args.data) / "train").is_dir():
        parser.error("set CHESTCT_DATA or --data to the chest-ctscan folder (train/valid/test)")
    return args


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Cross-validation on train+valid ({N_FOLDS} folds, duplicate-grouped)")
    for col in ("candidate", "model", "dims", "CV macro F1", "± std", "CV acc", "valid F1"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in sorted(rows, key=lambda r: -r["cv_macro_f1"]):
        table.add_row(r["name"], r["model"], str(r["dims"]), f"{r['cv_macro_f1']:.3f}", f"{r['cv_macro_f1_std']:.3f}",
                      f"{r['cv_accuracy']:.3f}", f"{r['valid_macro_f1']:.3f}")
    Console().print(table)


def markdown(rows: list[dict]) -> str:
    lines = ["| candidate | model | dims | CV macro-F1 (± std) | CV accuracy | train→valid macro-F1 |",
             "|---|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: -r["cv_macro_f1"]):
        lines.append(f"| {r['name']} | {r['model']} | {r['dims']} | {r['cv_macro_f1']:.3f} ± "
                     f"{r['cv_macro_f1_std']:.3f} | {r['cv_accuracy']:.3f} | {r['valid_macro_f1']:.3f} |")
    return "\n".join(lines)


def final_test(data: Path, cache: Path, backend: str, jobs: int) -> dict:
    """Train the library defaults on the train split through training.fit; score test once."""
    import pandas as pd

    from consumer.evaluate.report import print_report
    from consumer.learn.fit import fit

    cand = default_candidate()
    ds, X, sift = candidate_matrix(cand, data, cache, backend, jobs)
    train = np.where(ds.splits == "train")[0]
    test = np.where(ds.splits == "test")[0]
    blobs = [sift_bow.to_bytes(sift[i]) for i in range(len(ds.images))] if sift else [None] * len(ds.images)
    table = pd.DataFrame({"image_id": [f"{i:05d}" for i in train], "label": ds.labels[train], "seq": 0,
                          "features": list(X[train]), "sift": [blobs[i] for i in train]})
    started = time.perf_counter()
    model = fit(table, config=cand.config, model=cand.model, classes=ds.classes,
                image_shape=(cand.size, cand.size), color_mode="grayscale", seed=0)
    fit_seconds = time.perf_counter() - started
    predicted = model.predict(X[test], [blobs[i] for i in test] if sift else None)
    report = classification_metrics(ds.labels[test], predicted, ds.classes)
    report.update({"model": cand.model, "params": model.meta["params"], "image_size": cand.size,
                   "feature_config": cand.config.to_dict(), "n_train_images": int(len(train)),
                   "fit_seconds": fit_seconds})
    print_report(report)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    data, cache = Path(args.data), Path(args.cache)
    rows = []
    todo = [] if args.no_cv else [c for c in candidates() if not args.only or any(s in c.name for s in args.only)]
    for i, cand in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {cand.name}", flush=True)
        ds, X, sift = candidate_matrix(cand, data, cache, args.backend, args.jobs)
        dev = np.where(ds.splits != "test")[0]
        thumbs = load_dataset(data, 32, cache).images
        groups = duplicate_groups(ds, thumbs, dev)
        started = time.perf_counter()
        row = evaluate(cand, ds, X, sift, groups, args.seeds)
        row["seconds"] = time.perf_counter() - started
        print(f"    CV macro-F1 {row['cv_macro_f1']:.3f} ± {row['cv_macro_f1_std']:.3f}, "
              f"train→valid {row['valid_macro_f1']:.3f} ({row['seconds']:.0f}s)", flush=True)
        rows.append(row)
    if rows:
        print_table(rows)
        (cache / "cv_results.json").write_text(json.dumps(rows, indent=2) + "\n")
        (cache / "cv_results.md").write_text(markdown(rows) + "\n")
        print(f"wrote {cache / 'cv_results.json'} and {cache / 'cv_results.md'}")
        dev = np.where(load_dataset(data, 32, cache).splits != "test")[0]
        g = duplicate_groups(load_dataset(data, 32, cache), load_dataset(data, 32, cache).images, dev)
        print(f"train+valid: {len(dev)} images in {g.max() + 1} duplicate groups")
    if args.final:
        report = final_test(data, cache, args.backend, args.jobs)
        (cache / "final_test_report.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"TEST (train split -> test split, library defaults): macro-F1 {report['macro_f1']:.3f}, "
              f"accuracy {report['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
