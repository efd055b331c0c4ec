"""A trained model: the fitted classifier plus everything needed to apply it to new images.

:class:`TrainedModel` predicts from the fixed-length features plus, when SIFT is on, each
image's raw descriptors (encoded with the codebook learned at fit time). Engines:
``sklearn`` (a ``StandardScaler -> classifier`` pipeline saved with skops) and ``mllib``
(Spark ML's ``PipelineModel``, saved by its own writer). :mod:`consumer.learn.fit`,
:mod:`consumer.learn.incremental` and :mod:`consumer.learn.mllib` make them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..features import FeatureConfig
from . import model_store
from .design import design_matrix, spark_design
from .estimator_checks import check_estimator

SPARK_MODEL_DIR = "spark_model"
#: model.json keys every loadable model has.
REQUIRED_META = ("engine", "model", "feature_config", "classes", "image_shape", "color_mode", "n_features")


class TrainedModel:
    """A fitted classifier with everything needed to apply it to new images.

    Use :func:`fit`, :class:`IncrementalTrainer` or :meth:`load` to get one.

    Attributes
    ----------
    meta : dict
        model.json's metadata: model, engine, params, seed, feature_config, classes,
        image_shape [H, W, C], color_mode, n_train_images, n_features, versions.
    """

    def __init__(self, meta: dict, estimator=None, codebook: np.ndarray | None = None, spark_model=None):
        self.meta = meta
        self.estimator = estimator
        self.codebook = codebook
        self.spark_model = spark_model
        self.config = FeatureConfig.from_dict(meta["feature_config"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    # -- prediction ------------------------------------------------------------------
    def predict(self, features: np.ndarray, sift: Sequence[bytes | None] | None = None) -> np.ndarray:
        """Class indices for rows of fixed-length ``features`` (and their SIFT descriptors).

        Parameters
        ----------
        features : ndarray, shape (N, n_features)
        sift : sequence of bytes or None, optional
            Each image's float32 (k, 128) descriptors; required when SIFT is on.

        Returns
        -------
        ndarray of int64, shape (N,)
        """
        X = design_matrix(features, sift, self.config, self.codebook, self.meta["n_features"])
        if len(X) == 0:
            return np.zeros(0, np.int64)
        if self.spark_model is not None:
            return self._predict_spark(X)
        return np.asarray(self.estimator.predict(X)).astype(np.int64)

    def transform(self, df):
        """Spark ML only: add a ``prediction`` column to a Spark DataFrame of the feature table."""
        if self.spark_model is None:
            raise ValueError("transform() needs an mllib model; use predict() for the sklearn engine")
        design = spark_design(df, self.config, self.codebook, self.meta["n_features"])
        return self.spark_model.transform(design)

    def _predict_spark(self, X: np.ndarray) -> np.ndarray:
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise RuntimeError("predicting with an mllib model needs an active SparkSession")
        rows = [(i, [float(v) for v in x]) for i, x in enumerate(X)]
        df = spark.createDataFrame(rows, "row long, x array<double>").withColumn("x_vec", array_to_vector("x"))
        out = self.spark_model.transform(df).select("row", "prediction").toPandas().sort_values("row")
        return out["prediction"].to_numpy().astype(np.int64)

    # -- persistence -----------------------------------------------------------------
    def save(self, directory, key: bytes | None = None) -> Path:
        """Write the model directory (see :mod:`consumer.learn.model_store`).

        A previous model directory (one holding model.json) at ``directory`` is replaced;
        any other non-empty directory is refused with ValueError.
        """
        directory = Path(directory)
        model_store.prepare_dir(directory)
        if self.spark_model is not None:
            self.spark_model.write().overwrite().save(str(directory / SPARK_MODEL_DIR))
        arrays = {"codebook": self.codebook} if self.codebook is not None else {}
        estimators = {"estimator": self.estimator} if self.estimator is not None else {}
        return model_store.save_model_dir(directory, estimators=estimators, arrays=arrays, meta=self.meta, key=key)

    @classmethod
    def load(cls, directory, trusted: Sequence[str] = (), key: bytes | None = None) -> "TrainedModel":
        """Load a model directory after verifying it.

        Parameters
        ----------
        trusted : sequence of str
            Extra type names to trust in skops files beyond our allowlist.

        Raises
        ------
        ModelRefused
            Tampered, incomplete, foreign-version or untrusted model directory.
        """
        directory = Path(directory)
        meta = model_store.read_meta(directory, key)
        for required in REQUIRED_META:
            if required not in meta:
                raise model_store.ModelRefused(f"{directory}/model.json lacks {required!r}")
        config = FeatureConfig.from_dict(meta["feature_config"])
        codebook = model_store.load_array(directory, "codebook") if config.sift else None
        if meta["engine"] == "sklearn":
            estimator = model_store.load_estimator(directory, "estimator", trusted)
            # Width of the design matrix: the fixed features plus the SIFT words.
            width = int(meta["n_features"]) + (len(codebook) if codebook is not None else 0)
            check_estimator(estimator, width, len(meta["classes"]))
            return cls(meta, estimator=estimator, codebook=codebook)
        if meta["engine"] == "mllib":
            from pyspark.ml import PipelineModel
            from pyspark.sql import SparkSession

            if SparkSession.getActiveSession() is None:
                raise RuntimeError("loading an mllib model needs an active SparkSession")
            spark_model = PipelineModel.load(str(directory / SPARK_MODEL_DIR))
            return cls(meta, codebook=codebook, spark_model=spark_model)
        raise model_store.ModelRefused(f"{directory}/model.json names unknown engine {meta['engine']!r}")
