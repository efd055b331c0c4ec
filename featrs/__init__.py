"""featrs: Rust kernels for handcrafted image features with scikit-image's numbers."""
from ._featrs import __version__, max_threads

__all__ = ["__version__", "max_threads"]
