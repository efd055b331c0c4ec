"""Stage 8 of ``scripts/select_model.py`` (issue 12): the levers against sensor noise that stage 7 left.

* **Augmented training**: every training picture also enters the fold's training set as
  re-renderings through scripts/robustness.py's perturbations, so the model sees
  acquisition changes while it learns. The draws use seeds that are never the
  evaluation's (:data:`select_model.CV_PERTURBATION`), and a copy is only ever added
  beside its own picture's training row, so copies stay in their picture's fold group.
* **Noise-tolerant LBP** (a numpy prototype, ``scripts/lbp_tolerance.py``): a neighbour
  only sets its bit when it is brighter by ``lbp_tolerance`` grey levels.
* **Per-family LBP choices**: larger radii only, fewer tiles.

The CV table keeps select_model's discipline: train + valid only, duplicate-grouped folds,
the held-out folds scored clean and re-rendered with each ``--perturbed`` perturbation.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

import select_model as sm

#: Tolerances the prototype computes in one pass (grey levels of the 512 px framed picture).
LBP_TOLERANCES = (2.0, 4.0, 8.0)


def _check_seeds(augment) -> None:
    """Refuse augmentation draws that would repeat the evaluation's (the same seed and perturbation)."""
    import robustness

    for name, seed in augment:
        if name not in robustness.PERTURBATIONS:
            raise ValueError(f"augmentation perturbation must be one of {', '.join(robustness.PERTURBATIONS)}, "
                             f"got {name!r}")
        if seed == sm.CV_PERTURBATION[1]:
            raise ValueError(f"augmentation seed {seed} is the evaluation's seed: the training copies "
                             "would be the held-out folds' perturbed pictures")
    if len(set(augment)) != len(augment):
        raise ValueError(f"augmentation draws repeat: {augment!r}")


def augmented_matrices(cand: sm.Candidate, data: Path, cache: Path, backend: str, jobs: int) -> list[np.ndarray]:
    """One feature matrix per augmented copy of ``cand`` (rows aligned with the dataset; test rows NaN)."""
    _check_seeds(cand.augment)
    return [sm.perturbed_matrix(cand, data, cache, backend, jobs, name, seed) for name, seed in cand.augment]


def tolerant_lbp_block(ds: sm.Dataset, cand: sm.Candidate, key: dict, cache: Path, jobs: int) -> np.ndarray:
    """The prototype's LBP block of ``cand`` (``cand.lbp_tolerance``) for every image of ``ds``, cached.

    Every tolerance of :data:`LBP_TOLERANCES` is computed in one pass (the neighbour
    differences are the cost) and cached together.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    import lbp_tolerance

    if cand.lbp_tolerance not in LBP_TOLERANCES:
        raise ValueError(f"lbp_tolerance must be one of {LBP_TOLERANCES}, got {cand.lbp_tolerance!r}")
    c = cand.config
    if c.lbp_method != "uniform":
        raise ValueError(f"the tolerant LBP prototype is uniform only, got lbp.method {c.lbp_method!r}")
    spec = {"size": cand.size, "framing": key, "family": "lbp-tolerant", "P": list(c.lbp_P),
            "R": [float(r) for r in c.lbp_R], "grid": c.lbp_grid, "tolerances": list(LBP_TOLERANCES)}
    text = json.dumps(spec, sort_keys=True)
    path = cache / "features" / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.npy"
    if path.exists():
        block = np.load(path, allow_pickle=False)
    else:
        chunks = np.array_split(np.arange(len(ds.images)), max(8, 4 * jobs))
        work = tqdm(chunks, desc=f"tolerant lbp {sm.hw(cand.size)}", unit="chunk")
        parts = Parallel(n_jobs=jobs, max_nbytes=None)(
            delayed(lbp_tolerance.histogram_grid_batch)(ds.images[i], c.lbp_P, c.lbp_R, c.lbp_grid, LBP_TOLERANCES)
            for i in work)
        block = np.vstack(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, block, allow_pickle=False)
        path.with_suffix(".json").write_text(text + "\n")
    width = block.shape[1] // len(LBP_TOLERANCES)
    k = LBP_TOLERANCES.index(cand.lbp_tolerance)
    return block[:, k * width:(k + 1) * width]


def stage8() -> list[sm.Candidate]:
    """Stage 8's candidates, on the stage-6/7 framings at 512 px."""
    hog128 = {"hog_pixels_per_cell": (128,)}
    lbp248 = dict(lbp_P=(16, 24, 24), lbp_R=(2, 4, 8))
    hog_glcm = ("hog", "glcm")
    all1, all2, noise3 = ("all", 1), ("all", 2), ("noise", 3)
    rows = [
        # (framing, name suffix, feature options, augmentation, lbp tolerance)
        ("body crop + median", ", augmented all x1", {}, (all1,), None),
        ("body crop + median", ", augmented all x2", {}, (all1, all2), None),
        ("body crop + median", ", augmented all + noise", {}, (all1, noise3), None),
        ("body crop + median", ", augmented noise x1", {}, (noise3,), None),
        # Which part of "all" costs clean CV: noise plus one other acquisition change per copy.
        ("body crop + median", ", augmented noise + contrast", {}, (noise3, ("contrast", 4)), None),
        ("body crop + median", ", augmented noise + rotation", {}, (noise3, ("rotation", 5)), None),
        ("body crop + median", ", augmented noise + jpeg", {}, (noise3, ("jpeg", 6)), None),
        # Each change in a copy of its own, instead of all of them in one copy.
        ("body crop + median", ", augmented noise, contrast, rotation, jpeg apart", {},
         (noise3, ("contrast", 4), ("rotation", 5), ("jpeg", 6)), None),
        ("body crop + median", ", augmented noise, contrast, rotation, jpeg apart + all", {}, sm.CHOSEN_AUGMENT,
         None),
        ("body crop + median5+gaussian", ", augmented all x1", {}, (all1,), None),
        ("body crop + median5+gaussian", ", augmented all x2", {}, (all1, all2), None),
        ("body crop + median", ", hog+glcm, augmented all x1", dict(features=hog_glcm), (all1,), None),
        ("body crop + median", ", lbp radii 2,4,8, augmented all x1", lbp248, (all1,), None),
        ("body crop + median", ", lbp grid 2, augmented all x1", dict(lbp_grid=2), (all1,), None),
        ("body crop + median", ", lbp tolerance 2", {}, (), 2.0),
        ("body crop + median", ", lbp tolerance 4", {}, (), 4.0),
        ("body crop + median", ", lbp tolerance 8", {}, (), 8.0),
        ("body crop + median", ", lbp tolerance 4, augmented all x1", {}, (all1,), 4.0),
        ("body crop + median", ", lbp tolerance 8, augmented all x1", {}, (all1,), 8.0),
        ("body crop + median", ", lbp tolerance 8, augmented noise x1", {}, (noise3,), 8.0),
    ]
    out = [sm.Candidate(f"[{framing}] 512px{suffix}", 512, sm._cfg(**{**hog128, **options}),
                        framing=dict(sm.FRAMINGS[framing]), augment=augment, lbp_tolerance=tolerance)
           for framing, suffix, options, augment, tolerance in rows]
    # Twice the training rows, and rows that disagree more: the SVM may want a wider margin.
    for c in (3.0, 30.0):
        out.append(sm.Candidate(f"[body crop + median] 512px, augmented all x1, svm C={c:g}", 512, sm._cfg(**hog128),
                                "svm", {"C": c}, framing=dict(sm.FRAMINGS["body crop + median"]), augment=(all1,)))
    return out


def markdown(rows: list[dict]) -> str:
    """The CV table with a column per perturbation and its drop, sorted by the worst drop.

    The drop is the clean CV macro-F1 less the perturbed one; "worst" is the largest
    drop over the perturbations the row was scored on.
    """
    names = []
    for r in rows:
        names += [n for n in r.get("cv_perturbed") or {} if n not in names]
    head = ["candidate", "dims", "augment", "CV macro-F1 clean (± std)", *names,
            *(f"drop {n}" for n in names), "worst drop", "train→valid"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---|" + "---:|" * (len(head) - 3)]

    def worst(r):
        drops = [r["cv_macro_f1"] - v for v in (r.get("cv_perturbed") or {}).values()]
        return max(drops) if drops else float("inf")

    for r in sorted(rows, key=worst):
        pert = r.get("cv_perturbed") or {}
        aug = " + ".join(f"{n} (seed {s})" for n, s in r.get("augment") or []) or "none"
        cells = [r["name"], str(r["dims"]), aug, f"{r['cv_macro_f1']:.3f} ± {r['cv_macro_f1_std']:.3f}",
                 *(f"{pert[n]:.3f}" if n in pert else "" for n in names),
                 *(f"{r['cv_macro_f1'] - pert[n]:.3f}" if n in pert else "" for n in names),
                 f"{worst(r):.3f}" if pert else "", f"{r['valid_macro_f1']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
