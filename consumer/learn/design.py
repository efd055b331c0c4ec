"""The design matrix: feature-table rows -> the classifier's input (plus the SIFT words)."""
from __future__ import annotations

import numpy as np

from ..features import FeatureConfig, n_features, sift_bow

#: Columns of the feature table that training reads.
TABLE_COLUMNS = ("image_id", "label", "seq", "features")


def table_arrays(table, config: FeatureConfig, n_classes: int):
    """(features (N, D) float32, labels (N,) int64, sift list or None) from a pandas table.

    Rows are ordered by (seq, image_id) so the result does not depend on arrival order.
    """
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"training table lacks columns {missing}; it has {list(table.columns)}")
    if config.sift and "sift" not in table.columns:
        raise ValueError("SIFT is on but the training table has no 'sift' column")
    if len(table) == 0:
        raise ValueError("training table is empty: no image was received")
    table = table.sort_values(["seq", "image_id"], kind="stable")
    features = as_matrix(np.stack([np.asarray(v, np.float32) for v in table["features"]]), None)
    labels = as_labels(table["label"].to_numpy(), n_classes)
    sift = list(table["sift"]) if config.sift else None
    return features, labels, sift


def design_matrix(features, sift, config: FeatureConfig, codebook, width: int) -> np.ndarray:
    """Fixed-length features with the SIFT bag of words appended when SIFT is on."""
    X = as_matrix(features, width)
    if not config.sift:
        return X
    if sift is None or len(sift) != len(X):
        raise ValueError(f"SIFT is on: need one descriptor blob (or None) per image, got "
                         f"{'none' if sift is None else len(sift)} for {len(X)} images")
    if codebook is None:
        raise ValueError("SIFT is on but the model has no codebook")
    bow = sift_bow.encode([sift_bow.from_bytes(b) for b in sift], codebook)
    return np.hstack([X, bow])


def learn_codebook(sift, config: FeatureConfig, seed: int) -> np.ndarray:
    return sift_bow.learn_codebook([sift_bow.from_bytes(b) for b in sift], config.sift_n_words, seed)


def as_matrix(features, width: int | None) -> np.ndarray:
    X = np.asarray(features, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D (images, values) array, got shape {X.shape}")
    if width is not None and X.shape[1] != width:
        raise ValueError(f"features have {X.shape[1]} values per image, the model expects {width} "
                         f"(different feature configuration or image size?)")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinity")
    return X


def as_labels(labels, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes}), got {y.dtype} "
                         f"values from {y.min()} to {y.max()}")
    return y.astype(np.int64)


def check_labels(labels: np.ndarray) -> None:
    if len(np.unique(labels)) < 2:
        raise ValueError(f"training needs images of at least 2 classes, got only class {np.unique(labels)}")


def expected_width(config: FeatureConfig, image_shape, features: np.ndarray) -> int:
    width = n_features(config, image_shape)
    if features.shape[1] != width:
        raise ValueError(f"training table features have {features.shape[1]} values per image but "
                         f"{width} are expected for images of {tuple(image_shape)} with this feature "
                         f"configuration")
    return width


def spark_design(df, config: FeatureConfig, codebook, width: int, with_label: bool = False):
    """A Spark DataFrame with the design vector ``x_vec`` (plus ``label`` as double)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    if config.sift:
        cb = codebook

        def add_bow(batches):
            import pandas as pd
            for pdf in batches:
                X = design_matrix(np.stack([np.asarray(v, np.float32) for v in pdf["features"]])
                                  if len(pdf) else np.zeros((0, width), np.float32),
                                  list(pdf["sift"]), config, cb, width)
                out = pdf.drop(columns=["features", "sift"])
                out["x"] = list(X.astype(np.float64))
                yield pd.DataFrame(out)

        keep = [c for c in df.columns if c not in ("features", "sift")]
        from pyspark.sql.types import ArrayType, DoubleType

        schema = df.select(*keep).schema.add("x", ArrayType(DoubleType()))
        df = df.mapInPandas(add_bow, schema)
    else:
        df = df.withColumn("x", F.col("features").cast("array<double>"))
    if with_label:
        df = df.withColumn("label", F.col("label").cast("double"))
    return df.withColumn("x_vec", array_to_vector("x"))
