"""featrs: Rust kernels for handcrafted image features with scikit-image's numbers."""
from ._featrs import __version__, max_threads

__all__ = ["__version__", "max_threads"]

# --- glcm / gabor ---
from ._glcm import glcm_props_batch, graycomatrix, graycoprops  # noqa: E402

__all__ += ["graycomatrix", "graycoprops", "glcm_props_batch"]
# --- end glcm / gabor ---
