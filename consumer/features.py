"""Feature configuration and numpy-level extraction of the fixed-length feature families.

Families, in canonical order: ``hog``, ``lbp``, ``glcm``, ``gabor`` (fixed length, computed
by :func:`extract` through featrs' batch functions) and ``sift`` (a variable number of
descriptors per image, turned into a fixed-length bag of visual words by
:mod:`consumer.sift_bow` once a codebook is learned at fit time).

Option names are ``<family>.<parameter>`` (``hog.orientations``); the dataclass field is
``<family>_<parameter>``. Defaults were chosen by cross-validation on the training data
(docs/model-selection.md).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

FAMILIES = ("hog", "lbp", "glcm", "gabor", "sift")
FIXED_FAMILIES = ("hog", "lbp", "glcm", "gabor")
BACKENDS = ("rust", "skimage")
GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
HOG_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
LBP_METHODS = ("default", "ror", "uniform", "nri_uniform")
_QUARTER_TURNS = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)

#: Smallest tile side (pixels) a spatial grid may cut an image into.
MIN_TILE_SIDE = 8
#: Feature families used when none are named (docs/model-selection.md).
DEFAULT_FEATURES = ("hog", "lbp", "glcm")
#: Image (height, width) the producer should send for the default configuration (--image-size H W).
DEFAULT_IMAGE_SIZE = (256, 256)


def _meta(doc: str, check: Callable[[Any], str | None] | None = None) -> dict:
    return {"doc": doc, "check": check}


def _positive(v) -> str | None:
    values = v if isinstance(v, tuple) else (v,)
    return None if all(x > 0 for x in values) else "must be > 0"


def _non_empty_positive(v) -> str | None:
    if not v:
        return "must not be empty"
    return _positive(v)


def _one_of(choices: Sequence[str]) -> Callable[[Any], str | None]:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check


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
    bad = [p for p in v if p not in GLCM_PROPS]
    return f"unknown properties {bad}; valid: {', '.join(GLCM_PROPS)}" if bad else None


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

    features: tuple[str, ...] = field(default=DEFAULT_FEATURES, metadata=_meta(
        "feature families, a subset of hog,lbp,glcm,gabor,sift"))
    hog_orientations: int = field(default=9, metadata=_meta("HOG orientation bins", _positive))
    hog_pixels_per_cell: tuple[int, ...] = field(default=(64,), metadata=_meta(
        "HOG square cell sizes in pixels, one HOG per size (multi-scale)", _non_empty_positive))
    hog_cells_per_block: int = field(default=3, metadata=_meta("HOG block side in cells", _positive))
    hog_block_norm: str = field(default="L2-Hys", metadata=_meta("HOG block normalization",
                                                                 _one_of(HOG_BLOCK_NORMS)))
    hog_transform_sqrt: bool = field(default=False, metadata=_meta("HOG power-law compression"))
    lbp_P: tuple[int, ...] = field(default=(8, 16, 24), metadata=_meta(
        "LBP neighbour counts, paired with lbp.R", _non_empty_positive))
    lbp_R: tuple[float, ...] = field(default=(1.0, 2.0, 3.0), metadata=_meta(
        "LBP radii in pixels, paired with lbp.P", _non_empty_positive))
    lbp_method: str = field(default="uniform", metadata=_meta("LBP code type", _one_of(LBP_METHODS)))
    lbp_grid: int = field(default=3, metadata=_meta(
        "LBP spatial grid: one histogram per tile of a grid x grid split", _positive))
    glcm_distances: tuple[int, ...] = field(default=(1, 2, 4, 8), metadata=_meta(
        "GLCM pixel pair distances", _non_empty_positive))
    glcm_angles: tuple[float, ...] = field(default=_QUARTER_TURNS, metadata=_meta(
        "GLCM pixel pair angles in radians"))
    glcm_levels: int = field(default=32, metadata=_meta("GLCM grey levels (image quantized first)",
                                                        _glcm_levels))
    glcm_symmetric: bool = field(default=True, metadata=_meta("GLCM counts (i,j) and (j,i)"))
    glcm_normed: bool = field(default=True, metadata=_meta("GLCM normalized to probabilities"))
    glcm_props: tuple[str, ...] = field(default=GLCM_PROPS, metadata=_meta("GLCM properties", _glcm_props))
    glcm_grid: int = field(default=2, metadata=_meta(
        "GLCM spatial grid: properties per tile of a grid x grid split", _positive))
    gabor_frequencies: tuple[float, ...] = field(default=(0.1, 0.2, 0.3, 0.4), metadata=_meta(
        "Gabor frequencies in cycles/pixel, each < 0.5", _gabor_frequencies))
    gabor_thetas: tuple[float, ...] = field(default=_QUARTER_TURNS, metadata=_meta(
        "Gabor orientations in radians"))
    gabor_bandwidth: float = field(default=1.0, metadata=_meta("Gabor bandwidth in octaves", _positive))
    gabor_grid: int = field(default=1, metadata=_meta(
        "Gabor spatial grid: bank statistics per tile of a grid x grid split", _positive))
    sift_n_words: int = field(default=100, metadata=_meta("SIFT visual words (codebook size)", _positive))
    sift_max_keypoints: int = field(default=500, metadata=_meta("SIFT keypoints kept per image", _positive))
    sift_contrast_threshold: float = field(default=0.04, metadata=_meta("SIFT contrast threshold", _positive))
    sift_edge_threshold: float = field(default=10.0, metadata=_meta("SIFT edge threshold", _positive))
    sift_sigma: float = field(default=1.6, metadata=_meta("SIFT Gaussian sigma", _positive))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(f, value)
            object.__setattr__(self, f.name, coerced)
            check = f.metadata.get("check")
            problem = check(coerced) if check else None
            if problem:
                raise ValueError(f"feature option {_option_name(f.name)}={_show(coerced)} {problem}")
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
        return {_option_name(f.name): _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys raise ValueError."""
        if not isinstance(d, Mapping):
            raise ValueError(f"feature configuration must be a mapping, got {type(d).__name__}")
        names = _option_to_field()
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
        names = _option_to_field()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, text in options.items():
            if key != "features" and key.split(".", 1)[0] not in FAMILIES:
                continue
            if key not in names:
                family = key.split(".", 1)[0]
                valid = sorted(k for k in names if k.startswith(family + "."))
                raise ValueError(f"unknown feature option {key!r}; valid {family} options: {', '.join(valid)}")
            kwargs[names[key]] = _parse(fields[names[key]], key, text)
        return cls(**kwargs)

    @property
    def sift(self) -> bool:
        """Whether the SIFT bag of words is part of the features."""
        return "sift" in self.features

    def option_docs(self) -> dict[str, str]:
        """Option name -> one-line description with its default."""
        return {_option_name(f.name): f"{f.metadata['doc']} (default {_show(f.default)})"
                for f in dataclasses.fields(self)}


# -- extraction -------------------------------------------------------------------------
def to_grey(images: np.ndarray) -> np.ndarray:
    """``(N,H,W)`` uint8 as is; ``(N,H,W,C)`` (C = 1, 3 RGB or 4 RGBA) converted to grey.

    Colour uses OpenCV's ITU-R 601 weights (``cv2.COLOR_RGB2GRAY``), as the producer does.
    """
    import cv2

    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got dtype {images.dtype}")
    if images.ndim == 3:
        return images
    if images.ndim != 4 or images.shape[3] not in (1, 3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {images.shape}")
    if images.shape[3] == 1:
        return images[..., 0]
    code = cv2.COLOR_RGB2GRAY if images.shape[3] == 3 else cv2.COLOR_RGBA2GRAY
    out = np.empty(images.shape[:3], np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.cvtColor(np.ascontiguousarray(img), code)
    return out


def extract(images: np.ndarray, config: FeatureConfig, backend: str = "rust", n_threads: int = 1) -> np.ndarray:
    """Fixed-length features of a stack of images, families concatenated in config order.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W) or (N, H, W, C)
        Colour images are converted to grey first.
    config : FeatureConfig
        SIFT, if enabled, is skipped here (see :mod:`consumer.sift_bow`).
    backend : {"rust", "skimage"}
        featrs' Rust batch functions or the scikit-image reference (same numbers).
    n_threads : int
        Threads for the Rust kernels.

    Returns
    -------
    ndarray of float32, shape (N, :func:`n_features`)
    """
    api = _backend(backend)
    grey = to_grey(images)
    n, h, w = grey.shape
    if h == 0 or w == 0:
        raise ValueError(f"images must not be empty, got shape {grey.shape}")
    # Writable and contiguous: scikit-image's Cython GLCM refuses read-only buffers.
    grey = np.require(grey, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])
    width = n_features(config, (h, w))
    if n == 0:
        return np.zeros((0, width), np.float32)
    blocks = [_family(api, family, grey, config, n_threads) for family in config.features
              if family in FIXED_FAMILIES]
    out = np.hstack(blocks).astype(np.float32) if blocks else np.zeros((n, 0), np.float32)
    if out.shape != (n, width):
        raise RuntimeError(f"backend {backend} returned {out.shape[1]} features, expected {width}")
    return out


def feature_names(config: FeatureConfig, image_shape: Sequence[int]) -> list[str]:
    """Names of the columns :func:`extract` returns for images of ``image_shape`` (H, W[, C])."""
    h, w = _hw(image_shape)
    names: list[str] = []
    for family in config.features:
        if family == "hog":
            for ppc in config.hog_pixels_per_cell:
                br, bc, cpb = _hog_blocks(h, w, ppc, config.hog_cells_per_block)
                names += [f"hog.c{ppc}.b{r}_{c}.cell{i}_{j}.o{o}" for r in range(br) for c in range(bc)
                          for i in range(cpb) for j in range(cpb) for o in range(config.hog_orientations)]
        elif family == "lbp":
            from featrs.reference import lbp_n_bins
            for P, R in zip(config.lbp_P, config.lbp_R):
                names += [f"lbp.P{P}R{R:g}.{tile}.bin{k}" for tile in _tile_names(h, w, config.lbp_grid)
                          for k in range(lbp_n_bins(P, config.lbp_method))]
        elif family == "glcm":
            names += [f"glcm.{tile}.{p}.d{d}.a{math.degrees(a):g}" for tile in _tile_names(h, w, config.glcm_grid)
                      for p in config.glcm_props for d in config.glcm_distances for a in config.glcm_angles]
        elif family == "gabor":
            names += [f"gabor.{tile}.f{f:g}.t{math.degrees(t):g}.{stat}"
                      for tile in _tile_names(h, w, config.gabor_grid) for f in config.gabor_frequencies
                      for t in config.gabor_thetas for stat in ("mean", "var")]
    return names


def _tile_names(h: int, w: int, grid: int) -> list[str]:
    if grid > 1:
        _check_grid(h, w, grid)
    return [f"t{i}_{j}" for i in range(grid) for j in range(grid)]


def n_features(config: FeatureConfig, image_shape: Sequence[int]) -> int:
    """Number of columns :func:`extract` returns for images of ``image_shape``."""
    return len(feature_names(config, image_shape))


def quantize(images: np.ndarray, levels: int) -> np.ndarray:
    """Map 0..255 to ``levels`` grey levels: ``v * levels // 256`` (identity for 256)."""
    if levels >= 256:
        return images
    return ((images.astype(np.uint16) * levels) >> 8).astype(np.uint8)


def _family(api, family: str, grey: np.ndarray, c: FeatureConfig, n_threads: int) -> np.ndarray:
    if family == "hog":
        return np.hstack([api.hog_batch(grey, orientations=c.hog_orientations, pixels_per_cell=(ppc, ppc),
                                        cells_per_block=(c.hog_cells_per_block,) * 2,
                                        block_norm=c.hog_block_norm, transform_sqrt=c.hog_transform_sqrt,
                                        n_threads=n_threads)
                          for ppc in c.hog_pixels_per_cell])
    if family == "lbp":
        return np.hstack([api.lbp_histogram_batch(tile, P=P, R=R, method=c.lbp_method, n_threads=n_threads)
                          for P, R in zip(c.lbp_P, c.lbp_R) for tile in tiles(grey, c.lbp_grid)])
    if family == "glcm":
        quantized = quantize(grey, c.glcm_levels)
        blocks = [api.glcm_props_batch(tile, distances=c.glcm_distances, angles=c.glcm_angles,
                                       levels=c.glcm_levels, symmetric=c.glcm_symmetric, normed=c.glcm_normed,
                                       props=c.glcm_props, n_threads=n_threads)
                  for tile in tiles(quantized, c.glcm_grid)]
        return np.hstack(blocks)
    return np.hstack([api.gabor_bank_batch(tile, frequencies=c.gabor_frequencies, thetas=c.gabor_thetas,
                                           bandwidth=c.gabor_bandwidth, n_threads=n_threads)
                      for tile in tiles(grey, c.gabor_grid)])


def tiles(images: np.ndarray, grid: int) -> list[np.ndarray]:
    """Split ``(N, H, W)`` images into ``grid x grid`` tile stacks, row-major.

    Tile edges are ``linspace(0, side, grid + 1)`` truncated to ints; each returned
    stack is C-contiguous and writable (scikit-image's GLCM refuses read-only input).
    """
    if grid == 1:
        return [np.require(images, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])]
    _, h, w = images.shape
    _check_grid(h, w, grid)
    rows = np.linspace(0, h, grid + 1).astype(int)
    cols = np.linspace(0, w, grid + 1).astype(int)
    return [np.array(images[:, rows[i]:rows[i + 1], cols[j]:cols[j + 1]], order="C")
            for i in range(grid) for j in range(grid)]


def _check_grid(h: int, w: int, grid: int) -> None:
    if min(h, w) // grid < MIN_TILE_SIDE:
        raise ValueError(f"images of {h}x{w} are too small for a {grid}x{grid} grid (tiles under "
                         f"{MIN_TILE_SIDE} pixels); send larger images or lower the grid option")


def _backend(name: str):
    if name == "skimage":
        from featrs import reference
        return reference
    if name == "rust":
        import featrs
        if not hasattr(featrs, "hog_batch"):
            raise RuntimeError("featrs was built without its batch functions (featrs.hog_batch is missing); "
                               "rebuild featrs (make featrs) or use backend 'skimage'")
        return featrs
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")


def _hog_blocks(h: int, w: int, ppc: int, cpb: int) -> tuple[int, int, int]:
    br, bc = h // ppc - cpb + 1, w // ppc - cpb + 1
    if br < 1 or bc < 1:
        raise ValueError(f"images of {h}x{w} are too small for HOG with {ppc}-pixel cells and "
                         f"{cpb}x{cpb}-cell blocks (need at least {ppc * cpb}x{ppc * cpb}); "
                         f"send larger images or lower hog.pixels_per_cell / hog.cells_per_block")
    return br, bc, cpb


def _hw(image_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) with positive sides, got {image_shape}")
    return shape[0], shape[1]


# -- option plumbing ---------------------------------------------------------------------
def _option_name(field_name: str) -> str:
    if field_name == "features":
        return "features"
    family, param = field_name.split("_", 1)
    return f"{family}.{param}"


def _option_to_field() -> dict[str, str]:
    return {_option_name(f.name): f.name for f in dataclasses.fields(FeatureConfig)}


def _scalar_type(f: dataclasses.Field) -> tuple[type, bool]:
    """(element type, is_tuple) of a field from its annotation string."""
    ann = str(f.type)
    is_tuple = ann.startswith("tuple")
    for name, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if name in ann:
            return typ, is_tuple
    raise TypeError(f"unsupported annotation {ann}")


def _coerce(f: dataclasses.Field, value):
    typ, is_tuple = _scalar_type(f)
    option = _option_name(f.name)
    if is_tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise ValueError(f"feature option {option} must be a sequence of {typ.__name__}, got {value!r}")
        return tuple(_coerce_scalar(option, typ, v) for v in value)
    return _coerce_scalar(option, typ, value)


def _coerce_scalar(option: str, typ: type, value):
    if typ is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif typ is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ValueError(f"feature option {option} must be finite, got {value!r}")
            return float(value)
    elif isinstance(value, str):
        return value
    raise ValueError(f"feature option {option} must be {typ.__name__}, got {value!r}")


def _parse(f: dataclasses.Field, key: str, text) -> Any:
    if not isinstance(text, str):
        raise ValueError(f"feature option {key} must be given as a string, got {text!r}")
    typ, is_tuple = _scalar_type(f)
    parts = [p.strip() for p in text.split(",")] if is_tuple else [text.strip()]
    if is_tuple and parts == [""]:
        parts = []
    values = []
    for part in parts:
        try:
            values.append(_parse_scalar(typ, part))
        except ValueError:
            raise ValueError(f"feature option {key}={text!r}: {part!r} is not a valid {typ.__name__}") from None
    return tuple(values) if is_tuple else values[0]


def _parse_scalar(typ: type, text: str):
    if typ is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(text)
    if typ is int:
        return int(text)
    if typ is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    if not text:
        raise ValueError(text)
    return text


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)
