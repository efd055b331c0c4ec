"""Experiment tracking for chestct runs; MLflow is the one backend (optional extra ``mlflow``)."""
from .mlflow_tracker import (
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    ENV_VAR,
    MlflowTracker,
    TrackingError,
    add_cli_arguments,
    resolve_uri,
    tracker_from_args,
)

__all__ = ["DEFAULT_EXPERIMENT", "DEFAULT_MODEL_NAME", "ENV_VAR", "MlflowTracker", "TrackingError",
           "add_cli_arguments", "resolve_uri", "tracker_from_args"]
