"""The configurations model selection compares (``scripts/select_model.py``), stage by stage,
and the one it chose (docs/model-selection.md)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer import features as feats  # noqa: E402
from consumer.features import FeatureConfig  # noqa: E402
from consumer.learn.estimators import build_estimator  # noqa: E402
from selection_data import PLAIN  # noqa: E402


@dataclass
class Candidate:
    name: str
    size: int | tuple[int, int]
    config: FeatureConfig
    model: str = "svm"
    params: dict = field(default_factory=dict)
    framing: dict = field(default_factory=lambda: dict(PLAIN))
    #: Augmented training copies (stage 8): one ``(perturbation, seed)`` of scripts/robustness.py
    #: per copy of every training picture; the seeds are never the evaluation's (select_robust).
    augment: tuple[tuple[str, int], ...] = ()
    #: Stage 8 prototype: LBP bits set only for ``neighbour - centre >= lbp_tolerance`` grey
    #: levels (scripts/lbp_tolerance.py) instead of featrs' LBP; None is featrs' LBP.
    lbp_tolerance: float | None = None


#: Model names beyond consumer.models: soft-voting ensembles and a calibrated SVM.
ENSEMBLES = ("svm+rf", "svm-calibrated")


def build_model(cand: Candidate, seed: int):
    """A fresh estimator for ``cand``: one of consumer.models, or an ensemble of them."""
    if cand.model == "svm+rf":
        from sklearn.ensemble import VotingClassifier
        svm = build_estimator("svm", {"probability": True, **cand.params.get("svm", {})}, seed)
        rf = build_estimator("rf", cand.params.get("rf", {}), seed)
        return VotingClassifier([("svm", svm), ("rf", rf)], voting="soft",
                                weights=cand.params.get("weights"))
    if cand.model == "svm-calibrated":
        from sklearn.calibration import CalibratedClassifierCV
        return CalibratedClassifierCV(build_estimator("svm", cand.params, seed), method="sigmoid", cv=5)
    return build_estimator(cand.model, cand.params, seed)


def _cfg(features=feats.DEFAULT_FEATURES, **kw) -> FeatureConfig:
    return FeatureConfig(features=tuple(features), **kw)


#: The framing variants compared (producer.framing); every other option at its default.
FRAMINGS = {
    "whole picture": PLAIN,
    "body crop": {"crop": "body", "aspect": "stretch", "normalize": "none"},
    "body crop, pad": {"crop": "body", "aspect": "pad", "normalize": "none"},
    "body crop, margin 0": {"crop": "body", "crop_margin": 0.0, "aspect": "stretch", "normalize": "none"},
    "body crop, margin 0.08": {"crop": "body", "crop_margin": 0.08, "aspect": "stretch", "normalize": "none"},
    "body crop + clahe": {"crop": "body", "aspect": "stretch", "normalize": "clahe"},
    "body crop + percentile": {"crop": "body", "aspect": "stretch", "normalize": "percentile"},
    "whole + clahe": {"crop": "none", "aspect": "stretch", "normalize": "clahe"},
    "whole + percentile": {"crop": "none", "aspect": "stretch", "normalize": "percentile"},
    "body crop + median": {"crop": "body", "aspect": "stretch", "normalize": "none", "denoise": "median"},
    "body crop + gaussian": {"crop": "body", "aspect": "stretch", "normalize": "none", "denoise": "gaussian"},
    "body crop + median + percentile": {"crop": "body", "aspect": "stretch", "normalize": "percentile",
                                        "denoise": "median"},
    "body crop + gaussian + percentile": {"crop": "body", "aspect": "stretch", "normalize": "percentile",
                                          "denoise": "gaussian"},
    "body crop + median5": {"crop": "body", "aspect": "stretch", "normalize": "none", "denoise": "median5"},
    "body crop + median+gaussian": {"crop": "body", "aspect": "stretch", "normalize": "none",
                                    "denoise": "median+gaussian"},
    "body crop + median5+gaussian": {"crop": "body", "aspect": "stretch", "normalize": "none",
                                     "denoise": "median5+gaussian"},
    "body crop + bilateral": {"crop": "body", "aspect": "stretch", "normalize": "none", "denoise": "bilateral"},
    "body crop + median5+gaussian + percentile": {"crop": "body", "aspect": "stretch", "normalize": "percentile",
                                                  "denoise": "median5+gaussian"},
}
#: The stronger denoisers of stage 7 (issue 12: sensor noise), each a producer.framing choice.
STRONG_DENOISE = ("body crop + median5", "body crop + median+gaussian", "body crop + median5+gaussian",
                  "body crop + bilateral", "body crop + median5+gaussian + percentile")


def candidates(base: str = "body crop") -> list[Candidate]:
    """The configurations compared (see docs/model-selection.md for the reasoning).

    Stage 1 varies the framing under the earlier defaults (hog+lbp+glcm at 256 px,
    SVC C=10); stage 2 varies size, features and model on top of ``base`` framing.
    """
    out = [Candidate(f"[{name}] hog+lbp+glcm 256px", 256, _cfg(), framing=dict(f)) for name, f in FRAMINGS.items()
           if name not in STRONG_DENOISE]
    fr = dict(FRAMINGS[base])
    tag = f"[{base}]"
    out += [
        Candidate(f"{tag} 192px, hog 48px cells", 192, _cfg(hog_pixels_per_cell=(48,)), framing=fr),
        Candidate(f"{tag} 320px, hog 80px cells", 320, _cfg(hog_pixels_per_cell=(80,)), framing=fr),
        Candidate(f"{tag} hog 32+64px cells", 256, _cfg(hog_pixels_per_cell=(32, 64)), framing=fr),
        Candidate(f"{tag} hog sqrt", 256, _cfg(hog_transform_sqrt=True), framing=fr),
        Candidate(f"{tag} lbp radii 1,2,4,8", 256, _cfg(lbp_P=(8, 16, 24, 24), lbp_R=(1, 2, 4, 8)), framing=fr),
        Candidate(f"{tag} lbp grid 4", 256, _cfg(lbp_grid=4), framing=fr),
        Candidate(f"{tag} glcm distances 1..16", 256, _cfg(glcm_distances=(1, 2, 4, 8, 16)), framing=fr),
        Candidate(f"{tag} glcm 64 levels", 256, _cfg(glcm_levels=64), framing=fr),
        Candidate(f"{tag} + gabor grid 2", 256, _cfg(("hog", "lbp", "glcm", "gabor"), gabor_grid=2), framing=fr),
        Candidate(f"{tag} svm C=3", 256, _cfg(), "svm", {"C": 3.0}, framing=fr),
        Candidate(f"{tag} svm C=30", 256, _cfg(), "svm", {"C": 30.0}, framing=fr),
        Candidate(f"{tag} rf 500", 256, _cfg(), "rf", framing=fr),
        Candidate(f"{tag} soft vote svm+rf", 256, _cfg(), "svm+rf", framing=fr),
        Candidate(f"{tag} calibrated svm", 256, _cfg(), "svm-calibrated", framing=fr),
    ]
    # Stage 3: the stage-1/2 winners combined (320 px, margin 0, CLAHE, calibration).
    hog80 = dict(hog_pixels_per_cell=(80,))
    tight = {**fr, "crop_margin": 0.0}
    clahe = {**fr, "normalize": "clahe"}
    out += [
        Candidate(f"{tag} 320px margin 0", 320, _cfg(**hog80), framing=tight),
        Candidate(f"{tag} 320px + clahe", 320, _cfg(**hog80), framing=clahe),
        Candidate(f"{tag} 320px, hog 64px cells", 320, _cfg(hog_pixels_per_cell=(64,)), framing=fr),
        Candidate(f"{tag} 384px, hog 96px cells", 384, _cfg(hog_pixels_per_cell=(96,)), framing=fr),
        Candidate(f"{tag} 320px svm C=30", 320, _cfg(**hog80), "svm", {"C": 30.0}, framing=fr),
        Candidate(f"{tag} 320px calibrated svm", 320, _cfg(**hog80), "svm-calibrated", framing=fr),
        Candidate(f"{tag} 320px margin 0 + clahe, calibrated svm", 320, _cfg(**hog80), "svm-calibrated",
                  framing={**tight, "normalize": "clahe"}),
    ]
    # Stage 4: the crop's own aspect (median 260 x 400 px) instead of a square, and how it is resized.
    hog64 = dict(hog_pixels_per_cell=(64,))
    out += [
        Candidate(f"{tag} 256x384px", (256, 384), _cfg(**hog64), framing=fr),
        Candidate(f"{tag} 320x480px, hog 80px cells", (320, 480), _cfg(**hog80), framing=fr),
        Candidate(f"{tag} 384x576px, hog 96px cells", (384, 576), _cfg(hog_pixels_per_cell=(96,)), framing=fr),
        Candidate(f"{tag} 384px bicubic", 384, _cfg(hog_pixels_per_cell=(96,)), framing={**fr, "interpolation": "bicubic"}),
        Candidate(f"{tag} 448px, hog 112px cells", 448, _cfg(hog_pixels_per_cell=(112,)), framing=fr),
        Candidate(f"{tag} 384px margin 0", 384, _cfg(hog_pixels_per_cell=(96,)), framing=tight),
    ]
    # Stage 5: larger pictures (finer texture per body width) and multi-scale texture there.
    hog112 = dict(hog_pixels_per_cell=(112,))
    out += [
        Candidate(f"{tag} 512px, hog 128px cells", 512, _cfg(hog_pixels_per_cell=(128,)), framing=fr),
        Candidate(f"{tag} 448px + clahe", 448, _cfg(**hog112), framing=clahe),
        Candidate(f"{tag} 448px, lbp radii 1,2,4,8", 448, _cfg(**hog112, lbp_P=(8, 16, 24, 24), lbp_R=(1, 2, 4, 8)),
                  framing=fr),
        Candidate(f"{tag} 448px, glcm distances 1..16", 448, _cfg(**hog112, glcm_distances=(1, 2, 4, 8, 16)),
                  framing=fr),
        Candidate(f"{tag} 448px + gabor grid 2", 448, _cfg(("hog", "lbp", "glcm", "gabor"), **hog112, gabor_grid=2),
                  framing=fr),
        Candidate(f"{tag} 448px calibrated svm", 448, _cfg(**hog112), "svm-calibrated", framing=fr),
        Candidate(f"{tag} 640px, hog 160px cells", 640, _cfg(hog_pixels_per_cell=(160,)), framing=fr),
        Candidate(f"{tag} 512px, svm C=30", 512, _cfg(hog_pixels_per_cell=(128,)), "svm", {"C": 30.0}, framing=fr),
        Candidate(f"{tag} 512px, lbp radii 1,2,4,8", 512,
                  _cfg(hog_pixels_per_cell=(128,), lbp_P=(8, 16, 24, 24), lbp_R=(1, 2, 4, 8)), framing=fr),
    ]
    # Stage 6: denoising (the lever the perturbed CV asks for) at the larger sizes.
    for side in (384, 512):
        for name in ("body crop + median", "body crop + gaussian + percentile"):
            out.append(Candidate(f"[{name}] {side}px", side, _cfg(hog_pixels_per_cell=(side // 4,)),
                                 framing=dict(FRAMINGS[name])))
    # Stage 7 (issue 12, sensor noise): stronger denoisers, texture options that read less of the
    # pixel-scale noise (LBP without R=1, GLCM without distance 1 or with fewer levels), and no
    # LBP at all (the family the noise moves most), with GLCM given more room in its place.
    lbp234 = dict(lbp_P=(16, 24, 24), lbp_R=(2, 3, 4))
    lbp248 = dict(lbp_P=(16, 24, 24), lbp_R=(2, 4, 8))
    hog_glcm = ("hog", "glcm")
    stage7 = [
        ("body crop + median5", "", {}),
        ("body crop + median+gaussian", "", {}),
        ("body crop + median5+gaussian", "", {}),
        ("body crop + bilateral", "", {}),
        ("body crop + median5+gaussian + percentile", "", {}),
        ("body crop + median", ", lbp radii 2,4,8", lbp248),
        ("body crop + median5+gaussian", ", lbp radii 2,3,4", lbp234),
        ("body crop + median5+gaussian", ", lbp radii 2,4,8", lbp248),
        ("body crop + median5+gaussian", ", glcm distances 2,4,8", dict(glcm_distances=(2, 4, 8))),
        ("body crop + median5+gaussian", ", glcm 16 levels", dict(glcm_levels=16)),
        ("body crop + median", ", hog+glcm", dict(features=hog_glcm)),
        ("body crop + median", ", hog+glcm, glcm grid 3", dict(features=hog_glcm, glcm_grid=3)),
        ("body crop + median", ", hog+glcm, glcm 16 levels", dict(features=hog_glcm, glcm_levels=16)),
        ("body crop + median + percentile", ", hog+glcm", dict(features=hog_glcm)),
        ("body crop + median+gaussian", ", hog+glcm", dict(features=hog_glcm)),
        ("body crop + median5+gaussian", ", hog+glcm", dict(features=hog_glcm)),
        ("body crop + median5+gaussian", ", hog+glcm, glcm grid 3", dict(features=hog_glcm, glcm_grid=3)),
        ("body crop + median5+gaussian", ", hog+glcm, glcm distances 1..16",
         dict(features=hog_glcm, glcm_distances=(1, 2, 4, 8, 16))),
        ("body crop + median5+gaussian", ", hog+glcm, glcm 16 levels", dict(features=hog_glcm, glcm_levels=16)),
        ("body crop + median5+gaussian + percentile", ", hog+glcm", dict(features=hog_glcm)),
    ]
    for name, suffix, options in stage7:
        out.append(Candidate(f"[{name}] 512px{suffix}", 512, _cfg(**{"hog_pixels_per_cell": (128,), **options}),
                             framing=dict(FRAMINGS[name])))
    # Stage 8 (issue 12, the levers stage 7 left): perturbation-augmented training, a
    # noise-tolerant LBP prototype and per-family LBP choices (scripts/select_robust.py).
    import select_robust
    return out + select_robust.stage8()


#: Stage 8's augmented copies of the chosen configuration: one per change, then all of them
#: (``(perturbation, seed)``; the producer's ``producer.augment.COPY_PERTURBATIONS``, in order).
CHOSEN_AUGMENT = (("noise", 3), ("contrast", 4), ("rotation", 5), ("jpeg", 6), ("all", 1))
#: The configuration --final and scripts/robustness.py use (docs/model-selection.md): stage 6's
#: framing and features, trained with stage 8's augmented copies (the issue-12 drop target
#: met in grouped CV, clean macro-F1 about the unaugmented one's).
CHOSEN = Candidate("chosen", 512, _cfg(hog_pixels_per_cell=(128,)), "svm", {},
                   framing=dict(FRAMINGS["body crop + median"]), augment=CHOSEN_AUGMENT)
