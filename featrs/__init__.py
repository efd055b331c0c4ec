"""featrs: Rust kernels for handcrafted image features with scikit-image's numbers.

Single-image functions carry scikit-image's names, signatures and results (``hog``,
``local_binary_pattern``, ``graycomatrix``, ``graycoprops``, ``gabor_kernel``, ``gabor``);
the ``*_batch`` functions turn a ``(N, H, W)`` uint8 stack into ``(N, D)`` feature rows in
parallel, with the same layout as :mod:`featrs.reference` (the scikit-image reference).
``simd_path()`` names the instruction set the kernels run with (``FEATRS_SIMD`` lowers it).
"""
from ._featrs import __version__, max_threads, simd_path
from ._gabor import gabor, gabor_bank_batch, gabor_kernel
from ._glcm import glcm_props_batch, glcm_props_grid_batch, graycomatrix, graycoprops
from ._hog import hog, hog_batch
from ._lbp import lbp_histogram_batch, lbp_histogram_grid_batch, local_binary_pattern
from ._options import (GABOR_FREQUENCIES, GABOR_THETAS, GLCM_ANGLES, GLCM_DEFAULT_PROPS, GLCM_PROPS,
                       HOG_BLOCK_NORMS, LBP_HISTOGRAM_METHODS, LBP_METHODS, lbp_n_bins)

__all__ = [
    "__version__", "max_threads", "simd_path",
    "hog", "hog_batch", "local_binary_pattern", "lbp_histogram_batch", "lbp_histogram_grid_batch",
    "graycomatrix", "graycoprops", "glcm_props_batch", "glcm_props_grid_batch",
    "gabor_kernel", "gabor", "gabor_bank_batch",
    "HOG_BLOCK_NORMS", "LBP_METHODS", "LBP_HISTOGRAM_METHODS", "GLCM_PROPS", "GLCM_DEFAULT_PROPS",
    "GLCM_ANGLES", "GABOR_FREQUENCIES", "GABOR_THETAS", "lbp_n_bins",
]
