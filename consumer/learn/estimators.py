"""The scikit-learn estimators the consumer trains, with their default hyper-parameters.

Every model is a pipeline ``StandardScaler -> classifier``: the feature families have
very different scales (HOG in [0, 0.2], GLCM contrast in the hundreds). The defaults
were chosen by cross-validation on the training data (docs/model-selection.md).
"""
from __future__ import annotations

from typing import Mapping

MODELS = ("svm", "rf", "sgd")
#: The model used when none is named (best cross-validated macro F1, docs/model-selection.md).
DEFAULT_MODEL = "svm"

#: Default hyper-parameters of each model; ``params`` passed by the user override them.
DEFAULT_PARAMS: dict[str, dict] = {
    "svm": {"C": 10.0, "gamma": "scale", "kernel": "rbf", "class_weight": "balanced"},
    "rf": {"n_estimators": 500, "max_features": "sqrt", "min_samples_leaf": 1,
           "class_weight": "balanced_subsample", "n_jobs": 1},
    "sgd": {"loss": "hinge", "alpha": 1e-3, "penalty": "l2", "class_weight": None},
}


def model_params(model: str, params: Mapping | None = None) -> dict:
    """Defaults of ``model`` updated with ``params``; unknown names raise ValueError.

    Parameters
    ----------
    model : {"svm", "rf", "sgd"}
    params : mapping, optional
        Hyper-parameters of the underlying scikit-learn classifier.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    merged = dict(DEFAULT_PARAMS[model])
    if params:
        allowed = set(_classifier_class(model)().get_params())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"unknown {model} parameters {unknown}; valid ones are {sorted(allowed)}")
        merged.update(params)
    return merged


def build_estimator(model: str, params: Mapping | None = None, seed: int = 0):
    """A fresh ``Pipeline(StandardScaler, classifier)`` for ``model``.

    Parameters
    ----------
    model : {"svm", "rf", "sgd"}
    params : mapping, optional
        Overrides of :data:`DEFAULT_PARAMS`.
    seed : int
        ``random_state`` of the classifier.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scaler", StandardScaler()), ("classifier", build_classifier(model, params, seed))])


def build_classifier(model: str, params: Mapping | None = None, seed: int = 0):
    """The bare classifier of ``model`` (no scaler)."""
    merged = model_params(model, params)
    merged["random_state"] = seed
    return _classifier_class(model)(**merged)


def _classifier_class(model: str):
    if model == "svm":
        from sklearn.svm import SVC
        return SVC
    if model == "rf":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    return SGDClassifier
