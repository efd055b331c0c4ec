"""featrs: Rust kernels for handcrafted image features with scikit-image's numbers."""
from ._featrs import __version__, max_threads

__all__ = ["__version__", "max_threads"]

# --- glcm / gabor ---
from ._gabor import gabor, gabor_bank_batch, gabor_kernel  # noqa: E402
from ._glcm import glcm_props_batch, graycomatrix, graycoprops  # noqa: E402

__all__ += ["graycomatrix", "graycoprops", "glcm_props_batch", "gabor_kernel", "gabor", "gabor_bank_batch"]
# --- end glcm / gabor ---
