"""featrs' enumerations and batch defaults: the one owner of each.

The façades (``_hog.py`` ...), the scikit-image reference (``reference.py``) and the
consumer all import these names from here (re-exported by :mod:`featrs`), so a choice
list or a default is written once.
"""
from __future__ import annotations

import math

#: HOG block normalisations, spelled like scikit-image.
HOG_BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
#: Every ``local_binary_pattern`` method.
LBP_METHODS = ("default", "ror", "uniform", "nri_uniform", "var")
#: Methods whose codes are integers, so that they make a histogram (``var`` does not).
LBP_HISTOGRAM_METHODS = ("default", "ror", "uniform", "nri_uniform")
#: Every property ``graycoprops`` knows, spelled like scikit-image.
GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM",
              "mean", "variance", "std", "entropy")
#: The six classic Haralick-style properties: the batch default.
GLCM_DEFAULT_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
#: Four quarter-turn angles (radians): the GLCM and Gabor batch default.
QUARTER_TURNS = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
GLCM_ANGLES = QUARTER_TURNS
#: Default Gabor bank: 4 frequencies (cycles/pixel, all below Nyquist 0.5) x 4 orientations.
GABOR_FREQUENCIES = (0.1, 0.2, 0.3, 0.4)
GABOR_THETAS = QUARTER_TURNS


def lbp_n_bins(P: int, method: str) -> int:
    """Number of distinct LBP codes (histogram bins) for ``P`` neighbours and ``method``."""
    if method == "uniform":
        return P + 2
    if method == "nri_uniform":
        return P * (P - 1) + 3
    if method in ("default", "ror"):
        return 2**P
    raise ValueError(f"method must be one of {', '.join(LBP_HISTOGRAM_METHODS)} for a histogram, "
                     f"got {method!r}")
