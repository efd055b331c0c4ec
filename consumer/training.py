"""Train, save, load and apply the consumer's classifiers.

:func:`fit` trains on the Parquet feature table (one row per training image);
:class:`IncrementalTrainer` trains while the stream runs (``sgd``: ``partial_fit`` per
micro-batch; ``svm``/``rf``: refit on everything seen every ``refit_every`` batches).
A :class:`TrainedModel` predicts from the fixed-length features plus, when SIFT is on,
each image's raw descriptors (encoded with the codebook learned at fit time).

Engines: ``sklearn`` (a ``StandardScaler -> classifier`` pipeline saved with skops) and
``mllib`` (Spark ML ``StandardScaler -> RandomForestClassifier | OneVsRest(LinearSVC)``
saved by Spark ML's own writer).
"""
from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import model_store, sift_bow
from .features import FeatureConfig, n_features
from .models import DEFAULT_MODEL, MODELS, build_classifier, build_estimator, model_params

ENGINES = ("sklearn", "mllib")
COLOR_MODES = {"grayscale": 1, "rgb": 3}
TABLE_COLUMNS = ("image_id", "label", "seq", "features")
SPARK_MODEL_DIR = "spark_model"

#: Spark ML defaults per model (``params`` overrides them, Spark ML parameter names).
MLLIB_DEFAULT_PARAMS: dict[str, dict] = {
    "rf": {"numTrees": 200, "maxDepth": 12, "featureSubsetStrategy": "sqrt"},
    "svm": {"regParam": 0.01, "maxIter": 100},
}


class ModelMismatch(ValueError):
    """The stream does not match the model (image size, colour mode or classes)."""


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
        design = _spark_design(df, self.config, self.codebook, self.meta["n_features"])
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

    # -- compatibility -----------------------------------------------------------------
    def check_stream(self, hello: Mapping) -> None:
        """Raise :class:`ModelMismatch` unless a producer hello matches this model.

        Parameters
        ----------
        hello : mapping
            The producer's hello frame: ``image_shape`` [H, W, C] (C 1 grayscale, 3 rgb)
            and ``classes``.
        """
        problems = []
        shape = hello.get("image_shape")
        if not isinstance(shape, (list, tuple)) or len(shape) != 3:
            raise ModelMismatch(f"producer hello has no valid image_shape [H, W, C]: {shape!r}")
        model_shape = list(self.meta["image_shape"])
        if list(shape[:2]) != model_shape[:2]:
            problems.append(f"image size: producer sends {shape[0]}x{shape[1]}, the model was trained on "
                            f"{model_shape[0]}x{model_shape[1]} (restart the producer with "
                            f"--image-size {model_shape[0]} or retrain)")
        stream_mode = _color_mode_of(shape[2])
        if stream_mode != self.meta["color_mode"]:
            problems.append(f"colour mode: producer sends {stream_mode} (C={shape[2]}), the model was trained "
                            f"on {self.meta['color_mode']}")
        classes = list(hello.get("classes") or [])
        if classes != self.classes:
            problems.append(f"classes: producer has {classes}, the model has {self.classes} "
                            f"(names and order must match)")
        if problems:
            raise ModelMismatch("model does not match the stream: " + "; ".join(problems))

    # -- persistence -----------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write the model directory (see :mod:`consumer.model_store`).

        A previous model directory (one holding model.json) at ``directory`` is replaced;
        any other non-empty directory is refused with ValueError.
        """
        directory = Path(directory)
        _prepare_dir(directory)
        if self.spark_model is not None:
            self.spark_model.write().overwrite().save(str(directory / SPARK_MODEL_DIR))
        arrays = {"codebook": self.codebook} if self.codebook is not None else {}
        estimators = {"estimator": self.estimator} if self.estimator is not None else {}
        return model_store.save_model_dir(directory, estimators=estimators, arrays=arrays, meta=self.meta)

    @classmethod
    def load(cls, directory, trusted: Sequence[str] = ()) -> "TrainedModel":
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
        meta = model_store.read_meta(directory)
        for key in ("engine", "model", "feature_config", "classes", "image_shape", "color_mode", "n_features"):
            if key not in meta:
                raise model_store.ModelRefused(f"{directory}/model.json lacks {key!r}")
        config = FeatureConfig.from_dict(meta["feature_config"])
        codebook = model_store.load_array(directory, "codebook") if config.sift else None
        if meta["engine"] == "sklearn":
            estimator = model_store.load_estimator(directory, "estimator", trusted)
            return cls(meta, estimator=estimator, codebook=codebook)
        if meta["engine"] == "mllib":
            from pyspark.ml import PipelineModel
            from pyspark.sql import SparkSession

            if SparkSession.getActiveSession() is None:
                raise RuntimeError("loading an mllib model needs an active SparkSession")
            spark_model = PipelineModel.load(str(directory / SPARK_MODEL_DIR))
            return cls(meta, codebook=codebook, spark_model=spark_model)
        raise model_store.ModelRefused(f"{directory}/model.json names unknown engine {meta['engine']!r}")


# -- fitting ---------------------------------------------------------------------------
def fit(table, *, config: FeatureConfig, model: str = DEFAULT_MODEL, engine: str = "sklearn",
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
        return _fit_mllib(table, config=config, model=model, classes=classes, image_shape=image_shape,
                          color_mode=color_mode, seed=seed, params=params, spark=spark)
    merged = model_params(model, params)
    features, labels, sift = table_arrays(table, config, len(classes))
    width = _expected_width(config, image_shape, features)
    codebook = _learn_codebook(sift, config, seed) if config.sift else None
    X = design_matrix(features, sift, config, codebook, width)
    _check_labels(labels)
    estimator = build_estimator(model, params, seed).fit(X, labels)
    meta = _meta(config=config, model=model, engine="sklearn", params=merged, seed=seed, classes=classes,
                 image_shape=image_shape, color_mode=color_mode, n_images=len(labels), width=width)
    return TrainedModel(meta, estimator=estimator, codebook=codebook)


class IncrementalTrainer:
    """Train while the stream runs, one micro-batch at a time.

    ``sgd`` updates a :class:`~sklearn.preprocessing.StandardScaler` and a hinge-loss
    :class:`~sklearn.linear_model.SGDClassifier` (an incremental linear SVM) with
    ``partial_fit`` on every batch. ``svm`` and ``rf`` keep every row seen (or the last
    ``max_rows``) and refit from scratch every ``refit_every`` batches (once the rows
    hold at least two classes).

    With SIFT on, ``sgd`` buffers batches until they hold ``10 * sift.n_words``
    descriptors, learns the codebook from them once, then trains on the buffer.
    """

    def __init__(self, *, config: FeatureConfig, model: str = "sgd", classes: Sequence[str],
                 image_shape: Sequence[int], color_mode: str, seed: int = 0, params: Mapping | None = None,
                 refit_every: int = 5, max_rows: int | None = None):
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        if int(refit_every) < 1:
            raise ValueError(f"refit_every must be >= 1, got {refit_every}")
        if max_rows is not None and int(max_rows) < 1:
            raise ValueError(f"max_rows must be >= 1 or None, got {max_rows}")
        self.config = config
        self.model_name = model
        self.classes = list(classes)
        self.image_shape = tuple(image_shape)
        self.color_mode = color_mode
        self.seed = seed
        self.params = dict(params or {})
        self.refit_every = int(refit_every)
        self.max_rows = max_rows
        self.n_batches = 0
        self.n_images = 0
        self._width = n_features(config, image_shape)
        self._features: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._sift: list[bytes | None] = []
        self._pending = 0  # batches not yet in the current model
        self._model: TrainedModel | None = None
        self._codebook: np.ndarray | None = None
        if model == "sgd":
            from sklearn.preprocessing import StandardScaler
            self._scaler = StandardScaler()
            self._classifier = build_classifier("sgd", params, seed)

    @property
    def model(self) -> TrainedModel | None:
        """The model as of the last update (None before the first one)."""
        return self._model

    def partial_fit(self, features: np.ndarray, labels: np.ndarray,
                    sift: Sequence[bytes | None] | None = None) -> bool:
        """Add one micro-batch; return True when the model was updated by it."""
        features = _as_matrix(features, self._width)
        labels = _as_labels(labels, len(self.classes))
        if len(features) != len(labels):
            raise ValueError(f"features has {len(features)} rows but labels has {len(labels)}")
        if self.config.sift:
            sift = list(sift) if sift is not None else None
            if sift is None or len(sift) != len(labels):
                raise ValueError("SIFT is on: pass each image's descriptors (sift) with the batch")
        self.n_batches += 1
        self.n_images += len(labels)
        self._features.append(features)
        self._labels.append(labels)
        self._sift.extend(sift if self.config.sift else [None] * len(labels))
        self._pending += 1
        if self.model_name == "sgd":
            return self._sgd_step(final=False)
        self._trim()
        # A classifier needs two classes; a stream ordered by class may start with one.
        if self._pending >= self.refit_every and self._n_classes_seen() >= 2:
            self._refit()
            return True
        return False

    def finish(self) -> TrainedModel:
        """Bring the model up to date with every batch seen and return it."""
        if self.n_batches == 0:
            raise ValueError("no batch was trained on")
        if self._pending:
            if self.model_name == "sgd":
                self._sgd_step(final=True)
            else:
                self._refit()
        return self._model

    def _n_classes_seen(self) -> int:
        return len(np.unique(np.concatenate(self._labels)))

    def _refit(self) -> None:
        import pandas as pd

        features = np.concatenate(self._features)
        table = pd.DataFrame({"image_id": np.arange(len(features)), "label": np.concatenate(self._labels),
                              "seq": 0, "features": list(features), "sift": self._sift})
        self._model = fit(table, config=self.config, model=self.model_name, classes=self.classes,
                          image_shape=self.image_shape, color_mode=self.color_mode, seed=self.seed,
                          params=self.params)
        self._pending = 0

    def _sgd_step(self, final: bool) -> bool:
        from sklearn.pipeline import Pipeline

        sift_arrays = [sift_bow.from_bytes(b) for b in self._sift] if self.config.sift else None
        if self.config.sift and self._codebook is None:
            n_desc = sum(len(a) for a in sift_arrays)
            if n_desc < 10 * self.config.sift_n_words and not final:
                return False
            self._codebook = sift_bow.learn_codebook(sift_arrays, self.config.sift_n_words, self.seed)
        features = np.concatenate(self._features)
        labels = np.concatenate(self._labels)
        X = design_matrix(features, self._sift if self.config.sift else None, self.config,
                          self._codebook, self._width)
        self._scaler.partial_fit(X)
        self._classifier.partial_fit(self._scaler.transform(X), labels, classes=np.arange(len(self.classes)))
        self._features, self._labels, self._sift = [], [], []
        self._pending = 0
        estimator = Pipeline([("scaler", self._scaler), ("classifier", self._classifier)])
        meta = _meta(config=self.config, model="sgd", engine="sklearn", params=model_params("sgd", self.params),
                     seed=self.seed, classes=self.classes, image_shape=self.image_shape,
                     color_mode=self.color_mode, n_images=self.n_images, width=self._width)
        self._model = TrainedModel(meta, estimator=estimator, codebook=self._codebook)
        return True

    def _trim(self) -> None:
        if self.max_rows is None:
            return
        features = np.concatenate(self._features)[-self.max_rows:]
        labels = np.concatenate(self._labels)[-self.max_rows:]
        self._features, self._labels = [features], [labels]
        self._sift = self._sift[-self.max_rows:]


# -- the design matrix -------------------------------------------------------------------
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
    features = _as_matrix(np.stack([np.asarray(v, np.float32) for v in table["features"]]), None)
    labels = _as_labels(table["label"].to_numpy(), n_classes)
    sift = list(table["sift"]) if config.sift else None
    return features, labels, sift


def design_matrix(features, sift, config: FeatureConfig, codebook, width: int) -> np.ndarray:
    """Fixed-length features with the SIFT bag of words appended when SIFT is on."""
    X = _as_matrix(features, width)
    if not config.sift:
        return X
    if sift is None or len(sift) != len(X):
        raise ValueError(f"SIFT is on: need one descriptor blob (or None) per image, got "
                         f"{'none' if sift is None else len(sift)} for {len(X)} images")
    if codebook is None:
        raise ValueError("SIFT is on but the model has no codebook")
    bow = sift_bow.encode([sift_bow.from_bytes(b) for b in sift], codebook)
    return np.hstack([X, bow])


def _learn_codebook(sift, config: FeatureConfig, seed: int) -> np.ndarray:
    return sift_bow.learn_codebook([sift_bow.from_bytes(b) for b in sift], config.sift_n_words, seed)


def _as_matrix(features, width: int | None) -> np.ndarray:
    X = np.asarray(features, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D (images, values) array, got shape {X.shape}")
    if width is not None and X.shape[1] != width:
        raise ValueError(f"features have {X.shape[1]} values per image, the model expects {width} "
                         f"(different feature configuration or image size?)")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinity")
    return X


def _as_labels(labels, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes}), got {y.dtype} "
                         f"values from {y.min()} to {y.max()}")
    return y.astype(np.int64)


def _check_labels(labels: np.ndarray) -> None:
    if len(np.unique(labels)) < 2:
        raise ValueError(f"training needs images of at least 2 classes, got only class {np.unique(labels)}")


def _expected_width(config: FeatureConfig, image_shape, features: np.ndarray) -> int:
    width = n_features(config, image_shape)
    if features.shape[1] != width:
        raise ValueError(f"training table features have {features.shape[1]} values per image but "
                         f"{width} are expected for images of {tuple(image_shape)} with this feature "
                         f"configuration")
    return width


def _color_mode_of(channels) -> str:
    for mode, c in COLOR_MODES.items():
        if c == channels:
            return mode
    return f"unknown (C={channels})"


def _full_shape(image_shape, color_mode: str) -> list[int]:
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got {color_mode!r}")
    shape = [int(s) for s in image_shape]
    if len(shape) == 2:
        shape.append(COLOR_MODES[color_mode])
    if len(shape) != 3 or shape[2] != COLOR_MODES[color_mode]:
        raise ValueError(f"image_shape {tuple(image_shape)} does not agree with color_mode {color_mode!r}")
    return shape


def _meta(*, config, model, engine, params, seed, classes, image_shape, color_mode, n_images, width) -> dict:
    return {
        "model": model,
        "engine": engine,
        "params": _jsonable(dict(params)),
        "seed": int(seed),
        "feature_config": config.to_dict(),
        "classes": list(classes),
        "image_shape": _full_shape(image_shape, color_mode),
        "color_mode": color_mode,
        "n_train_images": int(n_images),
        "n_features": int(width),
        "versions": _versions(engine),
    }


def _versions(engine: str) -> dict:
    import cv2
    import skimage
    import sklearn
    import skops

    versions = {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                "scikit-image": skimage.__version__, "skops": skops.__version__, "opencv": cv2.__version__}
    try:
        import featrs
        versions["featrs"] = featrs.__version__
    except ImportError:
        versions["featrs"] = None
    if engine == "mllib":
        import pyspark
        versions["pyspark"] = pyspark.__version__
    return versions


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _prepare_dir(directory: Path) -> None:
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"model path {directory} exists and is not a directory")
        if any(directory.iterdir()):
            if not (directory / model_store.META_FILE).is_file():
                raise ValueError(f"model directory {directory} is not empty and holds no model; "
                                 f"refusing to overwrite it")
            shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


# -- Spark ML ----------------------------------------------------------------------------
def _fit_mllib(table, *, config, model, classes, image_shape, color_mode, seed, params, spark) -> TrainedModel:
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
    design = _spark_design(df, config, codebook, width, with_label=True).cache()
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
    meta = _meta(config=config, model=model, engine="mllib", params=merged, seed=seed, classes=classes,
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


def _spark_design(df, config: FeatureConfig, codebook, width: int, with_label: bool = False):
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
