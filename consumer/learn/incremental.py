"""Train while the stream runs, one producer batch at a time (the running model of ``train``)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..features import FeatureConfig, n_features, sift_bow
from .design import as_labels, as_matrix, design_matrix
from .estimators import MODELS, build_classifier, model_params
from .fit import fit
from .metadata import model_meta
from .model import TrainedModel


#: Images the svm/rf running model (and a finite stream's final fit) learns from: the newest
#: ones, so that memory stays flat on an endless stream. The whole train split fits in it.
DEFAULT_WINDOW = 5000
#: svm/rf refit the running model only once the images added since the last refit are at
#: least this share of the images it was fitted on. Refitting every few batches instead made
#: the refits' cost grow with the square of the stream (on the augmented train split they took
#: most of the driver's time); growing geometrically, they cost a few times one final fit.
DEFAULT_REFIT_GROWTH = 0.25
#: Largest ``refit_growth``: beyond it a long stream would hardly ever refit.
MAX_REFIT_GROWTH = 10.0


class IncrementalTrainer:
    """Train while the stream runs, one micro-batch at a time.

    ``sgd`` updates a :class:`~sklearn.preprocessing.StandardScaler` and a hinge-loss
    :class:`~sklearn.linear_model.SGDClassifier` (an incremental linear SVM) with
    ``partial_fit`` on every batch. ``svm`` and ``rf`` keep every row seen (or the last
    ``window`` images) and refit from scratch every ``refit_every`` batches, once the rows
    hold at least two classes and the images added since the last refit are at least
    ``refit_growth`` times the images that refit learned from (0: every ``refit_every``
    batches).

    With SIFT on, ``sgd`` buffers batches until they hold ``10 * sift.n_words``
    descriptors, learns the codebook from them once, then trains on the buffer.
    """

    def __init__(self, *, config: FeatureConfig, model: str = "sgd", classes: Sequence[str],
                 image_shape: Sequence[int], color_mode: str, seed: int = 0, params: Mapping | None = None,
                 refit_every: int = 5, window: int | None = None,
                 refit_growth: float = DEFAULT_REFIT_GROWTH):
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        if int(refit_every) < 1:
            raise ValueError(f"refit_every must be >= 1, got {refit_every}")
        if not 0 <= float(refit_growth) <= MAX_REFIT_GROWTH:
            raise ValueError(f"refit_growth must be from 0 to {MAX_REFIT_GROWTH}, got {refit_growth}")
        if window is not None and int(window) < 1:
            raise ValueError(f"window must be >= 1 or None, got {window}")
        self.config = config
        self.model_name = model
        self.classes = list(classes)
        self.image_shape = tuple(image_shape)
        self.color_mode = color_mode
        self.seed = seed
        self.params = dict(params or {})
        self.refit_every = int(refit_every)
        self.refit_growth = float(refit_growth)
        self.window = window
        self.n_batches = 0
        self.n_images = 0
        self._width = n_features(config, image_shape)
        self._features: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._sift: list[bytes | None] = []
        self._pending = 0  # batches not yet in the current model
        self._pending_images = 0  # their images
        self._fitted_images = 0  # images the current svm/rf model learned from
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
        features = as_matrix(features, self._width)
        labels = as_labels(labels, len(self.classes))
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
        self._pending_images += len(labels)
        if self.model_name == "sgd":
            return self._sgd_step(final=False)
        self._trim()
        # A classifier needs two classes; a stream ordered by class may start with one.
        if self._refit_due() and self._n_classes_seen() >= 2:
            self._refit()
            return True
        return False

    def _refit_due(self) -> bool:
        return (self._pending >= self.refit_every
                and self._pending_images >= self.refit_growth * self._fitted_images)

    def resume(self, model: TrainedModel, n_images: int, window_rows=None) -> None:
        """Continue from a published version after a restart.

        Parameters
        ----------
        model : TrainedModel
            The version to continue from: ``sgd`` keeps learning from its scaler and
            classifier; ``svm``/``rf`` are refitted on ``window_rows``.
        n_images : int
            Images the version had seen (the count goes on from there).
        window_rows : (features, labels, sift), optional
            ``svm``/``rf``: the table's last images up to the version, to refill the window.
        """
        if model.meta.get("model") != self.model_name:
            raise ValueError(f"cannot resume a {self.model_name} trainer from a {model.meta.get('model')} model")
        if self.model_name == "sgd":
            self._scaler = model.estimator.named_steps["scaler"]
            self._classifier = model.estimator.named_steps["classifier"]
            self._codebook = model.codebook
            self._model = model
        elif window_rows is not None and len(window_rows[1]):
            self.partial_fit(*window_rows)
            if self._n_classes_seen() >= 2:
                self._refit()
            else:
                self._model = model
        else:
            self._model = model
        self.n_images = int(n_images)

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
        self._fitted_images = len(features)
        self._pending = self._pending_images = 0

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
        self._pending = self._pending_images = 0
        estimator = Pipeline([("scaler", self._scaler), ("classifier", self._classifier)])
        meta = model_meta(config=self.config, model="sgd", engine="sklearn", params=model_params("sgd", self.params),
                     seed=self.seed, classes=self.classes, image_shape=self.image_shape,
                     color_mode=self.color_mode, n_images=self.n_images, width=self._width)
        self._model = TrainedModel(meta, estimator=estimator, codebook=self._codebook)
        return True

    def _trim(self) -> None:
        if self.window is None:
            return
        features = np.concatenate(self._features)[-self.window:]
        labels = np.concatenate(self._labels)[-self.window:]
        self._features, self._labels = [features], [labels]
        self._sift = self._sift[-self.window:]
