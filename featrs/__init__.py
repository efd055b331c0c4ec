"""featrs: Rust kernels for handcrafted image features with scikit-image's numbers."""
from ._featrs import __version__, max_threads

__all__ = ["__version__", "max_threads"]

# --- hog / lbp ---
from ._hog import hog, hog_batch  # noqa: E402
from ._lbp import lbp_histogram_batch, local_binary_pattern  # noqa: E402

__all__ += ["hog", "hog_batch", "local_binary_pattern", "lbp_histogram_batch"]
