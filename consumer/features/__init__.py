"""Features: the configuration, the vector's layout, extraction, the Spark stage, SIFT words.

``config`` (:class:`FeatureConfig`) -> ``layout`` (columns, tiles, size checks) ->
``extract`` (featrs batch kernels on numpy stacks) -> ``stage`` (the same on Arrow batches
in Spark executors); ``sift_bow`` turns SIFT descriptors into a bag of visual words.
"""
from .config import BACKENDS, DEFAULT_BACKEND, DEFAULT_FEATURES, FAMILIES, FIXED_FAMILIES, FeatureConfig
from .extract import backend_module, extract, quantize, to_grey
from .layout import MIN_TILE_SIDE, check_image_size, feature_names, min_image_side, n_features, tiles

__all__ = [
    "BACKENDS", "DEFAULT_BACKEND", "DEFAULT_FEATURES", "FAMILIES", "FIXED_FAMILIES", "FeatureConfig",
    "backend_module", "extract", "quantize", "to_grey",
    "MIN_TILE_SIDE", "check_image_size", "feature_names", "min_image_side", "n_features", "tiles",
]
