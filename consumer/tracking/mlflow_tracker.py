"""MLflow tracking of chestct train and predict runs (optional; off unless asked for).

A :class:`MlflowTracker` talks to one tracking store through ``MlflowClient``
(no global MLflow state is changed): a local ``sqlite:///path/mlflow.db`` store is
the embedded choice, ``http://127.0.0.1:5000`` a running ``mlflow server``.
Nothing here imports MLflow until a tracker is made, so chestct works without it.

A registered model version holds the chestct model directory as it was saved
(``chestct_model/``, loaded back through chestct's own hash-checked reader) and,
when a scikit-learn estimator is given, an MLflow ``sklearn`` flavour in skops
format (``sklearn_model/``), so ``mlflow.sklearn.load_model`` works without pickle.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import numbers
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

#: Environment variable MLflow itself reads; used when no ``--mlflow`` is given.
ENV_VAR = "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT = "chestct"
DEFAULT_MODEL_NAME = "chestct"
#: Schemes a tracking URI may have: a local database, a local folder, a tracking server.
SCHEMES = ("sqlite", "file", "http", "https")
MODEL_DIR_ARTIFACT = "chestct_model"
SKLEARN_ARTIFACT = "sklearn_model"
#: Artifacts of a sqlite store go into this folder beside the database file.
ARTIFACT_FOLDER = "mlflow-artifacts"
TAG_PREFIX = "chestct."
_INSTALL_HINT = "MLflow tracking needs mlflow: pip install 'chestct[mlflow]'"


class TrackingError(RuntimeError):
    """MLflow is missing, the tracking URI is unusable, or a tracking call failed."""


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--mlflow URI``, ``--mlflow-experiment NAME`` and ``--mlflow-model NAME`` to a parser."""
    group = parser.add_argument_group("tracking")
    group.add_argument("--mlflow", metavar="URI", default=None,
                       help=f"track this run in MLflow, e.g. sqlite:///runs/mlflow.db (default: ${ENV_VAR} "
                            "when set, else no tracking)")
    group.add_argument("--mlflow-experiment", metavar="NAME", default=DEFAULT_EXPERIMENT,
                       help="MLflow experiment name (default: %(default)s)")
    group.add_argument("--mlflow-model", metavar="NAME", default=DEFAULT_MODEL_NAME,
                       help="registered model name a trained model becomes a version of (default: %(default)s)")


def resolve_uri(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The tracking URI to use: the command line's, else ``$MLFLOW_TRACKING_URI``, else None (off)."""
    for value in (cli_value, environ.get(ENV_VAR)):
        if value is not None and value.strip():
            return value.strip()
    return None


def tracker_from_args(args: argparse.Namespace) -> "MlflowTracker | None":
    """A tracker for parsed :func:`add_cli_arguments` options, or None when tracking is off."""
    uri = resolve_uri(getattr(args, "mlflow", None))
    if uri is None:
        return None
    return MlflowTracker(uri, experiment=getattr(args, "mlflow_experiment", DEFAULT_EXPERIMENT),
                         model_name=getattr(args, "mlflow_model", DEFAULT_MODEL_NAME))


def check_uri(uri: str) -> Path | None:
    """Validate a tracking URI; return the database file of a ``sqlite:`` URI (else None).

    Raises
    ------
    TrackingError
        For an empty URI, another scheme, or a sqlite file whose folder is missing.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise TrackingError("the MLflow tracking URI is empty")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise TrackingError(f"unsupported MLflow tracking URI {uri!r}: use sqlite:///path/mlflow.db, "
                            f"file:///path/mlruns or http://host:port ({', '.join(SCHEMES)})")
    if scheme.lower() != "sqlite":
        return None
    if not rest.startswith("/") or rest == "/":
        raise TrackingError(f"a sqlite tracking URI names a file: sqlite:///relative/mlflow.db or "
                            f"sqlite:////absolute/mlflow.db, got {uri!r}")
    db = Path(rest[1:])
    if db.is_dir():
        raise TrackingError(f"sqlite tracking URI {uri!r} names a folder, not a database file")
    if not db.parent.resolve().is_dir():
        raise TrackingError(f"the folder of sqlite tracking database {str(db)!r} does not exist; create it first")
    return db


def _mlflow():
    # MLflow sends usage telemetry to its vendor by default; chestct talks to no one it
    # was not told to. An explicit MLFLOW_DISABLE_TELEMETRY=false still wins.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError(_INSTALL_HINT) from None
    return mlflow, MlflowClient


def _param_value(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, numbers.Number)) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def flatten_params(params: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested mappings become dotted keys; lists and other values become JSON/str."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = _param_value(value)
    return out


def _metric_value(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrackingError(f"metric {name!r} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


class MlflowTracker:
    """One chestct run at a time in an MLflow tracking store.

    Parameters
    ----------
    uri : str
        ``sqlite:///path/mlflow.db`` (created on first use), ``file:///path/mlruns`` or
        ``http(s)://host:port``.
    experiment : str
        Experiment name; created when missing.
    model_name : str
        Registered model that :meth:`register_model_version` adds versions to by default.
    artifact_location : str, optional
        Where a *new* experiment keeps its artifacts. Default for sqlite: the folder
        ``mlflow-artifacts`` beside the database (not the working directory).

    Raises
    ------
    TrackingError
        When mlflow is not installed, the URI is unusable, or the store cannot be opened.
    """

    def __init__(self, uri: str, experiment: str = DEFAULT_EXPERIMENT, model_name: str = DEFAULT_MODEL_NAME,
                 artifact_location: str | None = None):
        db = check_uri(uri)
        mlflow, client_class = _mlflow()
        self._mlflow = mlflow
        self.uri = uri
        if artifact_location is None and db is not None:
            artifact_location = (db.parent.resolve() / ARTIFACT_FOLDER).as_uri()
        try:
            self.client = client_class(tracking_uri=uri, registry_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (found.experiment_id if found is not None else
                                  self.client.create_experiment(experiment, artifact_location=artifact_location))
        except Exception as exc:  # MlflowException, sqlalchemy and OS errors alike
            raise TrackingError(f"cannot open MLflow tracking store {uri!r}: {_first_line(exc)}") from exc
        self.experiment = experiment
        self.model_name = model_name
        self.run_id: str | None = None
        self._last_step = 0

    # -- runs ----------------------------------------------------------------------------
    def start_train_run(self, params: Mapping, tags: Mapping | None = None, run_name: str | None = None) -> str:
        """Start a training run with its parameters (nested dicts are flattened); returns the run id."""
        return self._start("train", params, tags, run_name)

    def start_predict_run(self, model_name: str, model_version: str | int, params: Mapping | None = None,
                          tags: Mapping | None = None, run_name: str | None = None) -> str:
        """Start a prediction run linked to a registered model version (which must exist).

        The link is a set of tags: ``chestct.model_name``, ``chestct.model_version``
        and ``chestct.model_run_id`` (the training run that registered the version).
        """
        version = self._model_version(model_name, model_version)
        link = {f"{TAG_PREFIX}model_name": model_name, f"{TAG_PREFIX}model_version": str(version.version),
                f"{TAG_PREFIX}model_run_id": version.run_id or "", f"{TAG_PREFIX}model_source": version.source}
        return self._start("predict", params or {}, {**link, **(tags or {})}, run_name)

    def _start(self, kind: str, params: Mapping, tags: Mapping | None, run_name: str | None) -> str:
        if self.run_id is not None:
            raise TrackingError(f"run {self.run_id} is still open: call end() before starting another")
        from mlflow.entities import Param

        all_tags = {f"{TAG_PREFIX}kind": kind, **{k: _param_value(v) for k, v in (tags or {}).items()}}
        run = self._call("start a run", self.client.create_run, self.experiment_id, tags=all_tags,
                         run_name=run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.run_id = run.info.run_id
        self._last_step = 0
        flat = flatten_params(params)
        if flat:
            self._call("log parameters", self.client.log_batch, self.run_id,
                       params=[Param(k, v) for k, v in sorted(flat.items())])
        return self.run_id

    def end(self, status: str = "FINISHED") -> None:
        """Close the open run (``FINISHED``, ``FAILED`` or ``KILLED``); nothing when none is open."""
        if self.run_id is None:
            return
        run_id, self.run_id = self.run_id, None
        self._call("end the run", self.client.set_terminated, run_id, status=status)

    def __enter__(self) -> "MlflowTracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.end("FAILED" if exc_type is not None else "FINISHED")

    # -- logging -------------------------------------------------------------------------
    def log_stream(self, stream_id: str, preprocessing: Mapping, role: str = "train") -> None:
        """Record which producer stream a run read: ``<role>_stream.id`` and its preprocessing."""
        from mlflow.entities import Param

        run_id = self._open_run()
        flat = flatten_params({"id": stream_id, "preprocessing": dict(preprocessing)}, prefix=f"{role}_stream.")
        self._call("log the stream", self.client.log_batch, run_id,
                   params=[Param(k, v) for k, v in sorted(flat.items())])
        self._call("log the stream", self.client.log_dict, run_id,
                   {"stream_id": stream_id, "preprocessing": dict(preprocessing)}, f"streams/{role}.json")

    def log_batch(self, metrics: Mapping[str, float], step: int) -> None:
        """Log metrics at ``step`` (chestct uses the number of images seen so far)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TrackingError(f"step must be an integer >= 0, got {step!r}")
        self._log_metrics(metrics, step)
        self._last_step = max(self._last_step, step)

    def log_final(self, metrics: Mapping[str, float]) -> None:
        """Log end-of-run metrics (at the last step logged, so they line up with the history)."""
        self._log_metrics(metrics, self._last_step)

    def _log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        run_id = self._open_run()
        now = int(time.time() * 1000)
        entries = [Metric(name, _metric_value(name, value), now, step) for name, value in sorted(metrics.items())]
        if entries:
            self._call("log metrics", self.client.log_batch, run_id, metrics=entries)

    def log_artifacts(self, paths: Iterable[os.PathLike | str], artifact_path: str | None = None) -> None:
        """Upload files (as themselves) and folders (as ``<folder name>/...``) to the open run."""
        run_id = self._open_run()
        for path in (Path(p) for p in paths):
            if path.is_dir():
                dest = f"{artifact_path}/{path.name}" if artifact_path else path.name
                self._call("log artifacts", self.client.log_artifacts, run_id, str(path), dest)
            elif path.is_file():
                self._call("log an artifact", self.client.log_artifact, run_id, str(path), artifact_path)
            else:
                raise TrackingError(f"artifact {str(path)!r} does not exist")

    # -- model registry ------------------------------------------------------------------
    def register_model_version(self, model_dir: os.PathLike | str, name: str | None = None, *, estimator=None,
                               skops_trusted_types: Iterable[str] = ()) -> str:
        """Log a chestct model directory with the open run and register it as a new version of ``name``.

        Parameters
        ----------
        model_dir : path
            A saved chestct model directory (model.json and its files); logged as
            ``chestct_model/``.
        name : str, optional
            Registered model name (created when missing); default :attr:`model_name`.
        estimator : scikit-learn estimator, optional
            The fitted estimator saved in ``model_dir``. When given it is also logged
            as an MLflow ``sklearn`` model in skops format and becomes the version's
            source, so ``mlflow.sklearn.load_model("models:/name/version")`` works.
        skops_trusted_types : iterable of str
            Non-default types in the estimator that skops must trust (e.g.
            ``sklearn.tree._tree.Tree`` for a random forest); recorded in MLmodel.

        Returns
        -------
        str
            The new version number.
        """
        run_id = self._open_run()
        name = name or self.model_name
        model_dir = Path(model_dir)
        meta_file = model_dir / "model.json"
        if not meta_file.is_file():
            raise TrackingError(f"{str(model_dir)!r} is not a chestct model directory (no model.json)")
        self._call("log the model directory", self.client.log_artifacts, run_id, str(model_dir),
                   MODEL_DIR_ARTIFACT)
        source_path = MODEL_DIR_ARTIFACT
        if estimator is not None:
            self._log_sklearn_flavour(run_id, estimator, list(skops_trusted_types))
            source_path = SKLEARN_ARTIFACT
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self._call("create the registered model", self.client.create_registered_model, name)
        tags = {f"{TAG_PREFIX}model_dir": MODEL_DIR_ARTIFACT,
                f"{TAG_PREFIX}model_json_sha256": _sha256(meta_file)}
        version = self._call("register the model version", self.client.create_model_version, name,
                             source=f"runs:/{run_id}/{source_path}", run_id=run_id, tags=tags)
        return str(version.version)

    def _log_sklearn_flavour(self, run_id: str, estimator, trusted: list[str]) -> None:
        import importlib.metadata

        import mlflow.sklearn

        if getattr(mlflow.sklearn, "SERIALIZATION_FORMAT_SKOPS", None) is None:
            raise TrackingError(f"mlflow {self._mlflow.__version__} cannot save scikit-learn models in skops "
                                "format; upgrade it: pip install 'chestct[mlflow]'")
        # explicit requirements: inferring them would load the model in a subprocess
        requirements = [f"{pkg}=={importlib.metadata.version(pkg)}" for pkg in ("scikit-learn", "skops", "numpy")]
        with tempfile.TemporaryDirectory(prefix="chestct-mlflow-") as tmp:
            local = Path(tmp) / SKLEARN_ARTIFACT
            self._call("save the sklearn model", mlflow.sklearn.save_model, estimator, str(local),
                       serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                       skops_trusted_types=trusted or None, pip_requirements=requirements)
            self._call("log the sklearn model", self.client.log_artifacts, run_id, str(local), SKLEARN_ARTIFACT)

    def find_model_version(self, model_dir: os.PathLike | str) -> tuple[str, str] | None:
        """``(name, version)`` registered from this model directory (its model.json hash), or None.

        Lets ``chestct predict --model DIR`` link its run to the version without being told
        which one; when the same directory was registered more than once the newest wins.
        """
        meta_file = Path(model_dir) / "model.json"
        if not meta_file.is_file():
            raise TrackingError(f"{str(model_dir)!r} is not a chestct model directory (no model.json)")
        query = f"tags.`{TAG_PREFIX}model_json_sha256` = '{_sha256(meta_file)}'"
        found = self._call("search model versions", self.client.search_model_versions, query)
        if not found:
            return None
        newest = max(found, key=lambda v: (v.creation_timestamp, int(v.version)))
        return newest.name, str(newest.version)

    def download_model_dir(self, name: str, version: str | int, dst: os.PathLike | str) -> Path:
        """Fetch a registered version's chestct model directory into ``dst``; returns its path.

        Load the result with chestct's own verified loader (hashes, trusted types).
        """
        found = self._model_version(name, version)
        if not found.run_id:
            raise TrackingError(f"model {name!r} version {version} has no run to fetch its model directory from")
        dst = Path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / MODEL_DIR_ARTIFACT
        if target.exists():
            shutil.rmtree(target)
        local = self._call("download the model directory", self._mlflow.artifacts.download_artifacts,
                           run_id=found.run_id, artifact_path=MODEL_DIR_ARTIFACT, dst_path=str(dst),
                           tracking_uri=self.uri)
        return Path(local)

    def _model_version(self, name: str, version: str | int):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException:
            raise TrackingError(f"registered model {name!r} has no version {version} in {self.uri}") from None

    # -- helpers -------------------------------------------------------------------------
    def _open_run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run is open: call start_train_run or start_predict_run first")
        return self.run_id

    def _call(self, what: str, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow could not {what}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

