"""Refuse a loaded estimator whose arrays a compiled predict would index out of range.

skops only lets allowlisted types through, but an allowlisted ``sklearn.tree._tree.Tree``
or ``SVC`` still carries arrays that Cython/libsvm code indexes without checks: a node
pointing at feature 50,000,000 or at child 2,000,000,000 crashes the process (SIGSEGV)
instead of raising. :func:`check_estimator` validates every such array against the
model's own shape (features in, classes out) right after loading, before any predict.
"""
from __future__ import annotations

import numpy as np

from .model_store import ModelRefused


def check_estimator(estimator, n_features: int, n_classes: int) -> None:
    """Raise :class:`ModelRefused` unless every indexed array of ``estimator`` is in range.

    Parameters
    ----------
    estimator : sklearn Pipeline (scaler -> classifier) or a bare classifier
    n_features : int
        Width of the design matrix the model was trained on (model.json).
    n_classes : int
        Number of classes (model.json).
    """
    steps = getattr(estimator, "steps", None)
    parts = [step for _, step in steps] if steps is not None else [estimator]
    for part in parts:
        name = type(part).__name__
        checker = _CHECKS.get(name)
        if checker is None:
            raise ModelRefused(f"estimator step {name} has no array check; refusing it")
        checker(part, n_features, n_classes)


def _refuse(what: str, why: str) -> None:
    raise ModelRefused(f"the model's {what} {why}: the estimator file was crafted or damaged; refusing it")


def _array(obj, attr: str, what: str, ndim: int | None = None, dtype_kind: str | None = None) -> np.ndarray:
    value = getattr(obj, attr, None)
    if value is None:
        _refuse(what, f"({attr}) is missing")
    arr = np.asarray(value)
    if ndim is not None and arr.ndim != ndim:
        _refuse(what, f"({attr}) has {arr.ndim} dimensions, not {ndim}")
    if dtype_kind is not None and arr.dtype.kind not in dtype_kind:
        _refuse(what, f"({attr}) has dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        _refuse(what, f"({attr}) holds NaN or infinity")
    return arr


def _n_in(obj, n_features: int, what: str) -> None:
    n_in = getattr(obj, "n_features_in_", n_features)
    if int(n_in) != n_features:
        _refuse(what, f"takes {n_in} features but model.json says {n_features}")


def _scaler(s, n_features: int, n_classes: int) -> None:
    _n_in(s, n_features, "scaler")
    for attr in ("mean_", "scale_", "var_"):
        if getattr(s, attr, None) is not None and _array(s, attr, "scaler", 1, "f").shape != (n_features,):
            _refuse("scaler", f"({attr}) does not have {n_features} values")


def _classes(c, n_classes: int, what: str) -> None:
    classes = _array(c, "classes_", what, 1)
    if len(classes) > n_classes or (classes.dtype.kind in "iu" and len(classes) and
                                    (classes.min() < 0 or classes.max() >= n_classes)):
        _refuse(what, f"classes {classes.tolist()[:8]} are not indices of the {n_classes} classes")


def _tree(tree, n_features: int, n_outputs_classes: int, what: str) -> None:
    nodes = int(tree.node_count)
    if nodes < 1:
        _refuse(what, "has no node")
    left = _array(tree, "children_left", what, 1, "iu")
    right = _array(tree, "children_right", what, 1, "iu")
    feature = _array(tree, "feature", what, 1, "iu")
    _array(tree, "threshold", what, 1, "f")
    value = _array(tree, "value", what, 3, "f")
    if not (len(left) == len(right) == len(feature) == nodes == value.shape[0]):
        _refuse(what, "node arrays disagree on the node count")
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        _refuse(what, "has nodes with exactly one child")
    inner = ~leaf
    for child in (left[inner], right[inner]):
        if child.size and (child.min() <= 0 or child.max() >= nodes):
            _refuse(what, f"has children outside its {nodes} nodes")
    # Children come after their parent in sklearn's layout: that also rules out cycles.
    parents = np.flatnonzero(inner)
    if parents.size and ((left[inner] <= parents).any() or (right[inner] <= parents).any()):
        _refuse(what, "has a child before its parent (a cycle)")
    if inner.any() and (feature[inner].min() < 0 or feature[inner].max() >= n_features):
        _refuse(what, f"splits on features outside 0..{n_features - 1}")
    if value.shape[2] > n_outputs_classes or int(tree.n_outputs) != 1 or value.shape[1] != 1:
        _refuse(what, f"has values of shape {value.shape[1:]} for {n_outputs_classes} classes")


def _forest(f, n_features: int, n_classes: int) -> None:
    _n_in(f, n_features, "random forest")
    _classes(f, n_classes, "random forest")
    trees = getattr(f, "estimators_", None)
    if not trees:
        _refuse("random forest", "has no trees")
    for i, est in enumerate(trees):
        _n_in(est, n_features, f"tree {i}")
        _tree(est.tree_, n_features, n_classes, f"tree {i}")


def _svc(s, n_features: int, n_classes: int) -> None:
    _n_in(s, n_features, "SVM")
    _classes(s, n_classes, "SVM")
    k = len(s.classes_)
    sv = _array(s, "support_vectors_", "SVM", 2, "f")
    n_sv = sv.shape[0]
    if sv.shape[1] != n_features:
        _refuse("SVM", f"support vectors have {sv.shape[1]} features, not {n_features}")
    n_support = _array(s, "_n_support", "SVM", 1, "iu")
    if len(n_support) != k or n_support.min() < 0 or int(n_support.sum()) != n_sv:
        _refuse("SVM", "per-class support counts do not add up to its support vectors")
    dual = _array(s, "_dual_coef_", "SVM", 2, "f")
    if dual.shape != (k - 1, n_sv):
        _refuse("SVM", f"dual coefficients have shape {dual.shape}, not {(k - 1, n_sv)}")
    support = _array(s, "support_", "SVM", 1, "iu")
    if len(support) != n_sv:
        _refuse("SVM", "support indices do not match its support vectors")
    intercept = _array(s, "_intercept_", "SVM", 1, "f")
    if len(intercept) != k * (k - 1) // 2:
        _refuse("SVM", f"has {len(intercept)} intercepts for {k} classes")
    for attr in ("_probA", "_probB"):
        arr = _array(s, attr, "SVM", 1, "f")
        if arr.size not in (0, k * (k - 1) // 2):
            _refuse("SVM", f"({attr}) has {arr.size} values for {k} classes")


def _linear(c, n_features: int, n_classes: int) -> None:
    _n_in(c, n_features, "linear model")
    _classes(c, n_classes, "linear model")
    coef = _array(c, "coef_", "linear model", 2, "f")
    rows = 1 if len(c.classes_) == 2 else len(c.classes_)
    if coef.shape != (rows, n_features):
        _refuse("linear model", f"coefficients have shape {coef.shape}, not {(rows, n_features)}")
    if _array(c, "intercept_", "linear model", 1, "f").shape != (rows,):
        _refuse("linear model", "intercepts do not match its coefficients")


_CHECKS = {
    "StandardScaler": _scaler,
    "RandomForestClassifier": _forest,
    "SVC": _svc,
    "SGDClassifier": _linear,
}
