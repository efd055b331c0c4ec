"""The consumer's commands: orchestration of the layers below, one module per command.

Each command fetches the producer's ``hello``, runs :func:`consumer.preflight.check_stream`
on it, and only then starts Spark. See docs/consumer.md for the options and the work-dir
layout, and docs/architecture.md for the data flow.
"""
from .common import Run, feature_config, source_options
from .ingest import cmd_ingest
from .predict import cmd_predict
from .train import cmd_train

COMMANDS = {"train": cmd_train, "predict": cmd_predict, "ingest": cmd_ingest}

__all__ = ["COMMANDS", "Run", "feature_config", "source_options"]
