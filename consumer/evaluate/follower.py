"""``predict --follow``: switch to each newer published model version between micro-batches."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("chestct.predict")


class ModelFollower:
    """Watches a save path's ``LATEST`` and loads each newer version.

    Parameters
    ----------
    save_path : path
        Where ``train`` publishes versions.
    version : str
        The version loaded at start.
    load : callable
        ``load(folder)`` -> a verified ``TrainedModel`` (hashes, skops allowlist, arrays).
    accept : callable
        ``accept(model)`` raises when a version cannot predict this stream (another image
        size, classes, features or preprocessing); such a version is skipped with a warning.
    """

    def __init__(self, save_path, version: str, load: Callable[[Path], Any], accept: Callable[[Any], None]):
        self.save_path = Path(save_path)
        self.version = version
        self.load = load
        self.accept = accept
        self.refused: set[str] = set()

    def newer(self) -> tuple[str, Any] | None:
        """(name, model) of a newer acceptable version than the current one, else None."""
        from ..learn import versions

        name = versions.latest(self.save_path)
        if name is None or name <= self.version or name in self.refused:
            return None
        try:
            model = self.load(self.save_path / versions.VERSIONS_DIR / name)
            self.accept(model)
        except Exception as exc:  # a version this stream cannot use: keep predicting with ours
            self.refused.add(name)
            log.warning("not switching to model version %s: %s", name, exc)
            return None
        self.version = name
        return name, model
