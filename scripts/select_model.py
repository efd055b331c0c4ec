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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer import features as feats  # noqa: E402
from consumer.features import FeatureConfig  # noqa: E402
from consumer.evaluate.metrics import classification_metrics  # noqa: E402

# The data and the candidates live in modules of their own; their names stay reachable
# here (scripts/select_robust.py, scripts/robustness.py and the tests use ``select_model.X``).
from selection_data import (NEAR_DUPLICATE_CORRELATION, PLAIN, SPLITS, Dataset, decode,  # noqa: E402,F401
                            duplicate_groups, hw, list_images, load_dataset, prep_key, preprocessing)
from selection_candidates import (CHOSEN, CHOSEN_AUGMENT, ENSEMBLES, FRAMINGS, STRONG_DENOISE,  # noqa: E402,F401
                                  Candidate, _cfg, build_model, candidates)

N_FOLDS = 5


# -- features --------------------------------------------------------------------------
def family_config(config: FeatureConfig, family: str) -> dict:
    """The options of ``config`` that shape one family's block (its cache key)."""
    return {k: v for k, v in config.to_dict().items() if k.startswith(family + ".")}


def family_block(ds: Dataset, size: int | tuple[int, int], framing: dict, config: FeatureConfig, family: str, cache: Path,
                 backend: str, jobs: int) -> np.ndarray:
    """Features of one fixed-length family for every image, cached on disk."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    key = json.dumps({"size": size, "framing": framing, "family": family, **family_config(config, family)},
                     sort_keys=True)
    path = cache / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    single = FeatureConfig.from_dict({**config.to_dict(), "features": [family]})
    chunks = np.array_split(np.arange(len(ds.images)), max(8, 4 * jobs))
    work = tqdm(chunks, desc=f"{family} {hw(size)}", unit="chunk")
    parts = Parallel(n_jobs=jobs, max_nbytes=None)(
        delayed(feats.extract)(ds.images[c], single, backend=backend) for c in work)
    block = np.vstack(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, block, allow_pickle=False)
    (path.with_suffix(".json")).write_text(key + "\n")
    return block


def feature_matrix(images: np.ndarray, cand: "Candidate", backend: str) -> np.ndarray:
    """Features of ``images`` for ``cand`` (uncached: for pictures outside the dataset cache)."""
    return feats.extract(images, cand.config, backend=backend)



# -- evaluation ---------------------------------------------------------------------------
def training_rows(X: np.ndarray, y: np.ndarray, rows: np.ndarray,
                  augment: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of ``rows``, followed by each augmented copy of the same rows.

    Only the training rows' own copies are added, so a held-out picture never has a
    perturbed twin in training: the copies stay in their picture's fold group.
    """
    copies = [X[rows]] + [A[rows] for A in augment or []]
    if any(np.isnan(c).any() for c in copies[1:]):
        raise ValueError("an augmented copy is missing for some training rows (NaN features)")
    return np.vstack(copies), np.tile(y[rows], len(copies))


def evaluate(cand: Candidate, ds: Dataset, X: np.ndarray, groups: np.ndarray, seeds,
             perturbed: dict[str, np.ndarray] | None = None, augment: list[np.ndarray] | None = None) -> dict:
    """Grouped CV of ``cand`` on train+valid, clean and on each ``perturbed`` re-rendering of the held-out folds.

    ``augment`` holds the candidate's augmented copies (rows aligned with ``X``); each fold
    trains on its training rows and their copies only.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    perturbed = perturbed or {}
    dev = np.where(ds.splits != "test")[0]
    f1s, accs, scores = [], [], {name: [] for name in perturbed}
    for seed in seeds:
        folds = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=seed).split(dev, ds.labels[dev], groups)
        for tr, te in folds:
            model = build_model(cand, seed).fit(*training_rows(X, ds.labels, dev[tr], augment))
            m = classification_metrics(ds.labels[dev[te]], model.predict(X[dev[te]]), ds.classes)
            f1s.append(m["macro_f1"])
            accs.append(m["accuracy"])
            for name, Xp in perturbed.items():
                p = classification_metrics(ds.labels[dev[te]], model.predict(Xp[dev[te]]), ds.classes)
                scores[name].append(p["macro_f1"])
    train = np.where(ds.splits == "train")[0]
    valid = np.where(ds.splits == "valid")[0]
    model = build_model(cand, seeds[0]).fit(*training_rows(X, ds.labels, train, augment))
    v = classification_metrics(ds.labels[valid], model.predict(X[valid]), ds.classes)
    cv_perturbed = {name: float(np.mean(s)) for name, s in scores.items()}
    return {"name": cand.name, "size": cand.size, "model": cand.model, "params": cand.params,
            "framing": cand.framing, "features": cand.config.to_dict(), "dims": int(X.shape[1]),
            "cv_macro_f1": float(np.mean(f1s)), "cv_macro_f1_std": float(np.std(f1s)),
            "cv_accuracy": float(np.mean(accs)), "valid_macro_f1": v["macro_f1"], "valid_accuracy": v["accuracy"],
            "cv_perturbed_macro_f1": next(iter(cv_perturbed.values()), None), "cv_perturbed": cv_perturbed,
            # Per fold (seed-major, same folds for every candidate): paired comparisons between rows.
            "cv_fold_macro_f1": [float(f) for f in f1s],
            "cv_fold_perturbed": {name: [float(f) for f in s] for name, s in scores.items()},
            "augment": [list(a) for a in cand.augment], "lbp_tolerance": cand.lbp_tolerance,
            "n_groups": int(groups.max() + 1)}


def candidate_matrix(cand: Candidate, data: Path, cache: Path, backend: str, jobs: int):
    if cand.config.sift:
        raise SystemExit("SIFT is not compared here any more (the earlier study: it adds nothing)")
    ds = load_dataset(data, cand.size, cache, cand.framing)
    blocks = [candidate_block(ds, cand, cand.framing, f, cache, backend, jobs) for f in cand.config.features]
    return ds, np.hstack(blocks)


def candidate_block(ds: Dataset, cand: Candidate, key: dict, family: str, cache: Path, backend: str,
                    jobs: int) -> np.ndarray:
    """One family's block for ``cand``: featrs' kernels, or the tolerant-LBP prototype (stage 8).

    ``key`` names the pictures (the framing, plus the perturbation for re-rendered ones) in
    the cache key.
    """
    if family == "lbp" and cand.lbp_tolerance is not None:
        import select_robust
        return select_robust.tolerant_lbp_block(ds, cand, key, cache, jobs)
    return family_block(ds, cand.size, key, cand.config, family, cache, backend, jobs)


def groups_of_dev(data: Path, cache: Path, correlation: float = NEAR_DUPLICATE_CORRELATION) -> np.ndarray:
    """Duplicate groups of train+valid from 32x32 thumbnails of the whole picture."""
    thumbs = load_dataset(data, 32, cache)
    return duplicate_groups(thumbs, thumbs.images, np.where(thumbs.splits != "test")[0], correlation)


#: Perturbation whose held-out CV score is reported (scripts/robustness.py), and its seed.
CV_PERTURBATION = ("all", 0)


def perturbed_matrix(cand: Candidate, data: Path, cache: Path, backend: str, jobs: int,
                     perturbation: str = CV_PERTURBATION[0], seed: int = CV_PERTURBATION[1]) -> np.ndarray:
    """Features of train+valid re-rendered with ``perturbation`` (rows of the test split are NaN).

    Scoring the held-out folds on these (the model trained on clean pictures) shows which
    levers survive acquisition changes without touching the test split. With another
    ``seed`` the same function draws the augmented training copies of stage 8.
    """
    import robustness
    from tqdm import tqdm

    name = perturbation
    ds = load_dataset(data, cand.size, cache, cand.framing)
    dev = np.where(ds.splits != "test")[0]
    key = {**cand.framing, "perturbed": f"{name}-{seed}"}
    path = cache / f"images_{'x'.join(map(str, hw(cand.size)))}_{prep_key(preprocessing(cand.size, cand.framing))}" \
                   f"_{name}{seed}.npz"
    if path.exists():
        images = np.load(path, allow_pickle=False)["images"]
    else:
        # One folder per seed: the files of one draw must not overwrite another's.
        files = robustness.render_split(data, cache / "perturbed" / f"seed{seed}", name, seed,
                                        splits=("train", "valid"))
        prep = preprocessing(cand.size, cand.framing)
        images = np.stack([decode(p, prep)[0] for _, p in tqdm(files, desc="decode perturbed", unit="img")])
        np.savez(path, images=images)
    fake = Dataset(images, ds.labels[dev], ds.splits[dev], ds.hashes[dev], ds.classes)
    blocks = [candidate_block(fake, cand, key, f, cache, backend, jobs) for f in cand.config.features]
    out = np.full((len(ds.images), sum(b.shape[1] for b in blocks)), np.nan, np.float32)
    out[dev] = np.hstack(blocks)
    return out


# -- main ---------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("CHESTCT_DATA"),
                        help="dataset folder with train/valid/test (default: $CHESTCT_DATA)")
    parser.add_argument("--cache", type=Path, default=ROOT / "work" / "select", help="cache folder (git-ignored)")
    parser.add_argument("--backend", choices=feats.BACKENDS, default="rust",
                        help="feature kernels (featrs' Rust kernels give scikit-image's numbers, faster)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for feature extraction")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="CV shuffles")
    parser.add_argument("--base", default="body crop", choices=sorted(FRAMINGS),
                        help="framing the stage-2 candidates build on")
    parser.add_argument("--correlation", type=float, default=NEAR_DUPLICATE_CORRELATION,
                        help="thumbnail correlation that joins near duplicates into one group")
    parser.add_argument("--perturbed", nargs="*", default=None,
                        help="also score the held-out folds on pictures re-rendered with these perturbations of "
                             f"scripts/robustness.py (given without a value: {CV_PERTURBATION[0]}); with several, "
                             "the table has a column and a drop for each")
    parser.add_argument("--results", default="cv_results", help="name of the results files in --cache")
    parser.add_argument("--only", nargs="*", help="evaluate only candidates whose name contains one of these")
    parser.add_argument("--names", nargs="*", default=[],
                        help="also evaluate the candidates of exactly these names (with --only, or alone)")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation table")
    parser.add_argument("--final", action="store_true",
                        help="after the CV table, train CHOSEN on train and score test once")
    args = parser.parse_args(argv)
    if args.perturbed == []:
        args.perturbed = [CV_PERTURBATION[0]]
    import robustness
    unknown = sorted(set(args.perturbed or ()) - set(robustness.PERTURBATIONS))
    if unknown:
        parser.error(f"--perturbed: unknown perturbation {', '.join(unknown)} "
                     f"(choose from {', '.join(robustness.PERTURBATIONS)})")
    if args.data is None or not (Path(args.data) / "train").is_dir():
        parser.error("set CHESTCT_DATA or --data to the chest-ctscan folder (train/valid/test)")
    return args


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Cross-validation on train+valid ({N_FOLDS} folds, duplicate-grouped)")
    for col in ("candidate", "model", "dims", "CV macro F1", "± std", "CV acc", "valid F1"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in sorted(rows, key=lambda r: -r["cv_macro_f1"]):
        table.add_row(escape(r["name"]), r["model"], str(r["dims"]), f"{r['cv_macro_f1']:.3f}", f"{r['cv_macro_f1_std']:.3f}",
                      f"{r['cv_accuracy']:.3f}", f"{r['valid_macro_f1']:.3f}")
    Console().print(table)


def markdown(rows: list[dict]) -> str:
    if any(len(r.get("cv_perturbed") or {}) > 1 for r in rows):
        import select_robust
        return select_robust.markdown(rows)
    perturbed = any(r.get("cv_perturbed_macro_f1") is not None for r in rows)
    head = "| candidate | model | dims | CV macro-F1 (± std) | CV accuracy | train→valid macro-F1 |"
    lines = [head + (" CV macro-F1, perturbed |" if perturbed else ""),
             "|---|---|---:|---:|---:|---:|" + ("---:|" if perturbed else "")]
    for r in sorted(rows, key=lambda r: -r["cv_macro_f1"]):
        line = (f"| {r['name']} | {r['model']} | {r['dims']} | {r['cv_macro_f1']:.3f} ± "
                f"{r['cv_macro_f1_std']:.3f} | {r['cv_accuracy']:.3f} | {r['valid_macro_f1']:.3f} |")
        if perturbed:
            value = r.get("cv_perturbed_macro_f1")
            line += f" {value:.3f} |" if value is not None else " |"
        lines.append(line)
    return "\n".join(lines)


def bootstrap_macro_f1(y_true, y_pred, classes, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of macro-F1 over bootstrap resamples of the scored images."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    scores = [classification_metrics(y_true[i], y_pred[i], classes)["macro_f1"]
              for i in (rng.integers(0, n, n) for _ in range(n_resamples))]
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def fit_chosen(ds: Dataset, X: np.ndarray, cand: Candidate = CHOSEN, seed: int = 0,
               augment: list[np.ndarray] | None = None):
    """``cand``'s estimator trained on the train split (what the streaming pipeline trains on).

    ``augment``: the feature matrices of ``cand.augment``'s copies (rows as ``X``), which
    join their training pictures as in CV.
    """
    if bool(cand.augment) != bool(augment) or len(augment or ()) != len(cand.augment):
        raise ValueError(f"{cand.name} trains with {len(cand.augment)} augmented copies, "
                         f"got {len(augment or ())} matrices")
    train = np.where(ds.splits == "train")[0]
    return build_model(cand, seed).fit(*training_rows(X, ds.labels, train, augment))


def test_report(y_true, y_pred, classes) -> dict:
    report = classification_metrics(y_true, y_pred, classes)
    report["macro_f1_ci95"] = bootstrap_macro_f1(np.asarray(y_true), np.asarray(y_pred), classes)
    return report


def final_test(data: Path, cache: Path, backend: str, jobs: int, cand: Candidate = CHOSEN) -> dict:
    """Train ``cand`` on the train split; score the test split once, also without train duplicates."""
    from consumer.evaluate.report import print_report

    import select_robust

    ds, X = candidate_matrix(cand, data, cache, backend, jobs)
    augment = select_robust.augmented_matrices(cand, data, cache, backend, jobs)
    started = time.perf_counter()
    model = fit_chosen(ds, X, cand, augment=augment)
    fit_seconds = time.perf_counter() - started
    test = np.where(ds.splits == "test")[0]
    predicted = model.predict(X[test])
    report = test_report(ds.labels[test], predicted, ds.classes)
    seen = set(ds.hashes[ds.splits != "test"])
    fresh = np.array([h not in seen for h in ds.hashes[test]])
    report["without_duplicates_of_training"] = test_report(ds.labels[test][fresh], predicted[fresh], ds.classes)
    report["without_duplicates_of_training"].update({
        "n_images_left_out": int((~fresh).sum()),
        "n_pictures_left_out": int(len(set(ds.hashes[test][~fresh])))})
    report.update({"model": cand.model, "params": cand.params, "image_size": cand.size, "framing": cand.framing,
                   "augment": [list(a) for a in cand.augment],
                   "feature_config": cand.config.to_dict(), "n_train_images": int((ds.splits == "train").sum()),
                   "fit_seconds": fit_seconds})
    print_report(report)
    return report


def merge_results(path: Path, rows: list[dict]) -> list[dict]:
    """Rows of earlier runs (``--only`` subsets) kept, those of candidates run again replaced."""
    earlier = json.loads(path.read_text()) if path.exists() else []
    fresh = {r["name"] for r in rows}
    return [r for r in earlier if r["name"] not in fresh] + rows


def main(argv=None) -> int:
    args = parse_args(argv)
    data, cache = Path(args.data), Path(args.cache)
    rows = []
    todo = [] if args.no_cv else [c for c in candidates(args.base)
                                  if (not args.only and not args.names) or c.name in args.names
                                  or any(s in c.name for s in args.only or ())]
    missing = sorted(set(args.names) - {c.name for c in todo})
    if missing:
        raise SystemExit(f"--names: no candidate is called {', '.join(map(repr, missing))}")
    groups = groups_of_dev(data, cache, args.correlation) if todo else None
    for i, cand in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {cand.name}", flush=True)
        ds, X = candidate_matrix(cand, data, cache, args.backend, args.jobs)
        started = time.perf_counter()
        perturbed = {name: perturbed_matrix(cand, data, cache, args.backend, args.jobs, name)
                     for name in args.perturbed or ()}
        import select_robust
        augment = select_robust.augmented_matrices(cand, data, cache, args.backend, args.jobs)
        row = evaluate(cand, ds, X, groups, args.seeds, perturbed, augment)
        row["correlation"] = args.correlation
        row["perturbation"] = args.perturbed[0] if args.perturbed else None
        row["seconds"] = time.perf_counter() - started
        shown = "".join(f", {name} {f1:.3f}" for name, f1 in row["cv_perturbed"].items())
        print(f"    CV macro-F1 {row['cv_macro_f1']:.3f} ± {row['cv_macro_f1_std']:.3f}{shown}, "
              f"train→valid {row['valid_macro_f1']:.3f} ({row['seconds']:.0f}s)", flush=True)
        rows.append(row)
    if rows:
        print_table(rows)
        rows = merge_results(cache / f"{args.results}.json", rows)
        (cache / f"{args.results}.json").write_text(json.dumps(rows, indent=2) + "\n")
        (cache / f"{args.results}.md").write_text(markdown(rows) + "\n")
        print(f"wrote {cache / args.results}.json and .md")
        print(f"train+valid: {len(groups)} images in {groups.max() + 1} duplicate groups")
    if args.final:
        report = final_test(data, cache, args.backend, args.jobs)
        (cache / "final_test_report.json").write_text(json.dumps(report, indent=2) + "\n")
        low, high = report["macro_f1_ci95"]
        fresh = report["without_duplicates_of_training"]
        print(f"TEST (train split -> test split, {CHOSEN.framing}): macro-F1 {report['macro_f1']:.3f} "
              f"[95% CI {low:.3f}-{high:.3f}], accuracy {report['accuracy']:.3f}; without the "
              f"{fresh['n_images_left_out']} duplicates of training pictures: macro-F1 {fresh['macro_f1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
