"""The feature configuration: which families to compute and every parameter of each.

Families, in canonical order: ``hog``, ``lbp``, ``glcm``, ``gabor`` (fixed length, computed
by :func:`consumer.features.extract.extract` through featrs' batch functions) and ``sift``
(a variable number of descriptors per image, turned into a fixed-length bag of visual words
by :mod:`consumer.features.sift_bow` once a codebook is learned at fit time).

Option names are ``<family>.<parameter>`` (``hog.orientations``). Defaults were chosen by
cross-validation on the training data (docs/model-selection.md). featrs owns the lists of
valid choices (block norms, LBP methods, GLCM properties); they are imported, not repeated.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import featrs

from .options import (coerce, jsonable, meta, non_empty_positive, one_of, option_name, option_to_field,
                      parse, positive, show)

FAMILIES = ("hog", "lbp", "glcm", "gabor", "sift")
FIXED_FAMILIES = ("hog", "lbp", "glcm", "gabor")
#: Feature kernels: featrs (Rust) or its scikit-image reference (the same numbers).
BACKENDS = ("rust", "skimage")
DEFAULT_BACKEND = "rust"
#: Feature families used when none are named (docs/model-selection.md).
DEFAULT_FEATURES = ("hog", "lbp", "glcm")


def _gabor_frequencies(v) -> str | None:
    if not v:
        return "must not be empty"
    if not all(0 < f < 0.5 for f in v):
        return "every frequency must be in (0, 0.5): 0.5 cycles/pixel is the Nyquist limit"
    return None


def _glcm_levels(v) -> str | None:
    return None if 2 <= v <= 256 else "must be in [2, 256]"


def _glcm_props(v) -> str | None:
    if not v:
        return "must not be empty"
    bad = [p for p in v if p not in featrs.GLCM_PROPS]
    return f"unknown properties {bad}; valid: {', '.join(featrs.GLCM_PROPS)}" if bad else None


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature families to compute and every parameter of each.

    Attributes
    ----------
    features : tuple of str
        Subset of ``hog, lbp, glcm, gabor, sift`` in that (canonical) order.
    hog_orientations, hog_pixels_per_cell, hog_cells_per_block, hog_block_norm, hog_transform_sqrt
        scikit-image HOG parameters; ``hog_pixels_per_cell`` is a tuple of square cell
        sizes: one HOG per size, concatenated (multi-scale HOG).
    lbp_P, lbp_R, lbp_method
        LBP neighbour counts and radii, paired element-wise (one histogram per pair).
    glcm_distances, glcm_angles, glcm_levels, glcm_symmetric, glcm_normed, glcm_props
        Grey-level co-occurrence; the 0..255 image is quantized to ``glcm_levels``
        grey levels (``v * levels // 256``) first when ``glcm_levels < 256``.
    gabor_frequencies, gabor_thetas, gabor_bandwidth
        Gabor bank: mean and variance of the response magnitude per (frequency, theta).
    lbp_grid, glcm_grid, gabor_grid
        Spatial layout: the image is split into ``grid x grid`` tiles (edges at
        ``linspace(0, side, grid + 1)``) and the family is computed on each tile
        separately, tiles in row-major order. 1 means the whole image.
    sift_n_words, sift_max_keypoints, sift_contrast_threshold, sift_edge_threshold, sift_sigma
        SIFT bag of visual words (codebook size) and OpenCV SIFT detector parameters.
    """

    features: tuple[str, ...] = field(default=DEFAULT_FEATURES, metadata=meta(
        "feature families, a subset of hog,lbp,glcm,gabor,sift"))
    hog_orientations: int = field(default=9, metadata=meta("HOG orientation bins", positive))
    hog_pixels_per_cell: tuple[int, ...] = field(default=(128,), metadata=meta(
        "HOG square cell sizes in pixels, one HOG per size (multi-scale)", non_empty_positive))
    hog_cells_per_block: int = field(default=3, metadata=meta("HOG block side in cells", positive))
    hog_block_norm: str = field(default="L2-Hys", metadata=meta("HOG block normalization",
                                                                 one_of(featrs.HOG_BLOCK_NORMS)))
    hog_transform_sqrt: bool = field(default=False, metadata=meta("HOG power-law compression"))
    lbp_P: tuple[int, ...] = field(default=(8, 16, 24), metadata=meta(
        "LBP neighbour counts, paired with lbp.R", non_empty_positive))
    lbp_R: tuple[float, ...] = field(default=(1.0, 2.0, 3.0), metadata=meta(
        "LBP radii in pixels, paired with lbp.P", non_empty_positive))
    lbp_method: str = field(default="uniform", metadata=meta("LBP code type", one_of(featrs.LBP_HISTOGRAM_METHODS)))
    lbp_grid: int = field(default=3, metadata=meta(
        "LBP spatial grid: one histogram per tile of a grid x grid split", positive))
    glcm_distances: tuple[int, ...] = field(default=(1, 2, 4, 8), metadata=meta(
        "GLCM pixel pair distances", non_empty_positive))
    glcm_angles: tuple[float, ...] = field(default=featrs.GLCM_ANGLES, metadata=meta(
        "GLCM pixel pair angles in radians"))
    glcm_levels: int = field(default=32, metadata=meta("GLCM grey levels (image quantized first)",
                                                        _glcm_levels))
    glcm_symmetric: bool = field(default=True, metadata=meta("GLCM counts (i,j) and (j,i)"))
    glcm_normed: bool = field(default=True, metadata=meta("GLCM normalized to probabilities"))
    glcm_props: tuple[str, ...] = field(default=featrs.GLCM_DEFAULT_PROPS, metadata=meta("GLCM properties", _glcm_props))
    glcm_grid: int = field(default=2, metadata=meta(
        "GLCM spatial grid: properties per tile of a grid x grid split", positive))
    gabor_frequencies: tuple[float, ...] = field(default=featrs.GABOR_FREQUENCIES, metadata=meta(
        "Gabor frequencies in cycles/pixel, each < 0.5", _gabor_frequencies))
    gabor_thetas: tuple[float, ...] = field(default=featrs.GABOR_THETAS, metadata=meta(
        "Gabor orientations in radians"))
    gabor_bandwidth: float = field(default=1.0, metadata=meta("Gabor bandwidth in octaves", positive))
    gabor_grid: int = field(default=1, metadata=meta(
        "Gabor spatial grid: bank statistics per tile of a grid x grid split", positive))
    sift_n_words: int = field(default=100, metadata=meta("SIFT visual words (codebook size)", positive))
    sift_max_keypoints: int = field(default=500, metadata=meta("SIFT keypoints kept per image", positive))
    sift_contrast_threshold: float = field(default=0.04, metadata=meta("SIFT contrast threshold", positive))
    sift_edge_threshold: float = field(default=10.0, metadata=meta("SIFT edge threshold", positive))
    sift_sigma: float = field(default=1.6, metadata=meta("SIFT Gaussian sigma", positive))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = coerce(f, value)
            object.__setattr__(self, f.name, coerced)
            check = f.metadata.get("check")
            problem = check(coerced) if check else None
            if problem:
                raise ValueError(f"feature option {option_name(f.name)}={show(coerced)} {problem}")
        if not self.features:
            raise ValueError("feature option features must name at least one family")
        unknown = [f for f in self.features if f not in FAMILIES]
        if unknown:
            raise ValueError(f"feature option features has unknown families {unknown}; "
                             f"valid: {', '.join(FAMILIES)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"feature option features repeats a family: {list(self.features)}")
        object.__setattr__(self, "features", tuple(f for f in FAMILIES if f in self.features))
        if len(self.lbp_P) != len(self.lbp_R):
            raise ValueError(f"feature options lbp.P ({len(self.lbp_P)} values) and lbp.R "
                             f"({len(self.lbp_R)} values) must pair up: give as many of each")

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict with option names as keys (``{"hog.orientations": 9, ...}``)."""
        return {option_name(f.name): jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys raise ValueError."""
        if not isinstance(d, Mapping):
            raise ValueError(f"feature configuration must be a mapping, got {type(d).__name__}")
        names = option_to_field(cls)
        unknown = sorted(k for k in d if k not in names)
        if unknown:
            raise ValueError(f"unknown feature options {unknown}; valid: {', '.join(sorted(names))}")
        return cls(**{names[k]: v for k, v in d.items()})

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> "FeatureConfig":
        """Parse Spark-style string options such as ``{"features": "hog,lbp", "hog.orientations": "9"}``.

        Keys not starting with a family name or ``features`` are ignored (they belong to
        other components); unknown ``<family>.<param>`` keys raise ValueError.
        """
        names = option_to_field(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, text in options.items():
            if key != "features" and key.split(".", 1)[0] not in FAMILIES:
                continue
            if key not in names:
                family = key.split(".", 1)[0]
                valid = sorted(k for k in names if k.startswith(family + "."))
                raise ValueError(f"unknown feature option {key!r}; valid {family} options: {', '.join(valid)}")
            kwargs[names[key]] = parse(fields[names[key]], key, text)
        return cls(**kwargs)

    @property
    def sift(self) -> bool:
        """Whether the SIFT bag of words is part of the features."""
        return "sift" in self.features
