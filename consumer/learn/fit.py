"""Fit a model on the whole feature table (scikit-learn, or Spark ML for engine ``mllib``)."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..features import FeatureConfig
from .design import check_labels, design_matrix, expected_width, learn_codebook, table_arrays
from .estimators import DEFAULT_MODEL, build_estimator, model_params
from .metadata import model_meta
from .model import TrainedModel

ENGINES = ("sklearn", "mllib")
DEFAULT_ENGINE = "sklearn"


def fit(table, *, config: FeatureConfig, model: str = DEFAULT_MODEL, engine: str = DEFAULT_ENGINE,
        classes: Sequence[str], image_shape: Sequence[int], color_mode: str, seed: int = 0,
        params: Mapping | None = None, spark=None) -> TrainedModel:
    """Train a model on the feature table.

    Parameters
    ----------
    table : pandas.DataFrame (or Spark DataFrame for engine "mllib")
        Columns image_id, label (int class index), seq, features (list of float) and,
        when SIFT is on, sift (bytes of float32 (k, 128) descriptors or null).
    config : FeatureConfig
        The configuration the features were extracted with.
    model : {"svm", "rf", "sgd"}
    engine : {"sklearn", "mllib"}
    classes : sequence of str
        Class names; labels index into it.
    image_shape : (H, W) or (H, W, C)
        Size of the images the features came from.
    color_mode : {"grayscale", "rgb"}
    seed : int
    params : mapping, optional
        Hyper-parameter overrides (scikit-learn names, or Spark ML names for mllib).
    spark : SparkSession, optional
        Required for engine "mllib".
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "mllib":
        from .mllib import fit_mllib

        return fit_mllib(table, config=config, model=model, classes=classes, image_shape=image_shape,
                          color_mode=color_mode, seed=seed, params=params, spark=spark)
    merged = model_params(model, params)
    features, labels, sift = table_arrays(table, config, len(classes))
    width = expected_width(config, image_shape, features)
    codebook = learn_codebook(sift, config, seed) if config.sift else None
    X = design_matrix(features, sift, config, codebook, width)
    check_labels(labels)
    estimator = build_estimator(model, params, seed).fit(X, labels)
    meta = model_meta(config=config, model=model, engine="sklearn", params=merged, seed=seed, classes=classes,
                 image_shape=image_shape, color_mode=color_mode, n_images=len(labels), width=width)
    return TrainedModel(meta, estimator=estimator, codebook=codebook)
