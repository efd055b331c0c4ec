"""Spark ML training: ``StandardScaler -> RandomForestClassifier | OneVsRest(LinearSVC)``."""
from __future__ import annotations

import numpy as np

from ..features import FeatureConfig, n_features, sift_bow
from .design import TABLE_COLUMNS, spark_design
from .metadata import model_meta
from .model import TrainedModel

#: Spark ML defaults per model (``params`` overrides them, Spark ML parameter names).
MLLIB_DEFAULT_PARAMS: dict[str, dict] = {
    "rf": {"numTrees": 200, "maxDepth": 12, "featureSubsetStrategy": "sqrt"},
    "svm": {"regParam": 0.01, "maxIter": 100},
}


def fit_mllib(table, *, config, model, classes, image_shape, color_mode, seed, params, spark) -> TrainedModel:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LinearSVC, OneVsRest, RandomForestClassifier
    from pyspark.ml.feature import StandardScaler

    if spark is None:
        raise ValueError("engine 'mllib' needs the SparkSession (spark=...)")
    if model not in MLLIB_DEFAULT_PARAMS:
        raise ValueError(f"engine 'mllib' trains {', '.join(MLLIB_DEFAULT_PARAMS)}, not {model!r}")
    merged = dict(MLLIB_DEFAULT_PARAMS[model])
    merged.update(params or {})
    df = table if hasattr(table, "rdd") else _pandas_to_spark(table, config, spark)
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"training table lacks columns {missing}; it has {df.columns}")
    width = n_features(config, image_shape)
    codebook = None
    if config.sift:
        blobs = [r["sift"] for r in df.select("sift").collect()]
        codebook = sift_bow.learn_codebook([sift_bow.from_bytes(b) for b in blobs], config.sift_n_words, seed)
    design = spark_design(df, config, codebook, width, with_label=True).cache()
    counts = design.groupBy("label").count().collect()
    if not counts:
        raise ValueError("training table is empty: no image was received")
    if len(counts) < 2:
        raise ValueError("training needs images of at least 2 classes")
    if max(r["label"] for r in counts) >= len(classes) or min(r["label"] for r in counts) < 0:
        raise ValueError(f"labels must be class indices in [0, {len(classes)})")
    scaler = StandardScaler(inputCol="x_vec", outputCol="x_scaled", withMean=True, withStd=True)
    try:
        if model == "rf":
            classifier = RandomForestClassifier(featuresCol="x_scaled", labelCol="label", seed=seed, **merged)
        else:
            classifier = OneVsRest(classifier=LinearSVC(**merged), featuresCol="x_scaled", labelCol="label")
    except TypeError as exc:
        raise ValueError(f"invalid Spark ML parameters for {model}: {exc}") from exc
    spark_model = Pipeline(stages=[scaler, classifier]).fit(design)
    n_images = sum(r["count"] for r in counts)
    design.unpersist()
    meta = model_meta(config=config, model=model, engine="mllib", params=merged, seed=seed, classes=classes,
                 image_shape=image_shape, color_mode=color_mode, n_images=n_images, width=width)
    return TrainedModel(meta, codebook=codebook, spark_model=spark_model)


def _pandas_to_spark(table, config: FeatureConfig, spark):
    """The pandas feature table as a Spark DataFrame with an explicit schema."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"training table lacks columns {missing}; it has {list(table.columns)}")
    if config.sift and "sift" not in table.columns:
        raise ValueError("SIFT is on but the training table has no 'sift' column")
    schema = "image_id string, label long, seq long, features array<double>"
    columns = [table["image_id"].astype(str), table["label"].astype("int64"), table["seq"].astype("int64"),
               [[float(x) for x in np.asarray(v, np.float64)] for v in table["features"]]]
    if config.sift:
        schema += ", sift binary"
        columns.append([None if b is None else bytes(b) for b in table["sift"]])
    rows = [(str(a), int(b), int(c), d, *rest) for a, b, c, d, *rest in zip(*columns)]
    return spark.createDataFrame(rows, schema)


