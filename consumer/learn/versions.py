"""Model versions under a save path: immutable folders and an atomically switched pointer.

Layout::

    SAVE_PATH/
      versions/000001/    a whole model directory (model.json + estimator.skops ...)
      versions/000002/
      LATEST              the name of the newest published version ("000002\\n")

Publishing writes the new version into ``versions/.incoming-<name>-<pid>/``, renames that
folder to ``versions/<name>`` (one rename: it appears whole or not at all), then replaces
``LATEST`` by renaming a temporary file over it. A crash at any moment leaves only whole
versions visible; an ``.incoming-*`` folder is a crashed publish and is never read. A crash
between the two renames leaves a whole version that ``LATEST`` does not name yet:
:func:`repair_pointer` (the next train's resume) points ``LATEST`` at it, so the lineage
goes on from the newest whole version.
``SAVE_PATH`` itself resolves to its latest version, so a single-model user keeps working;
a save path holding a ``model.json`` directly (the older layout) still loads as it is.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

from .model_store import META_FILE

VERSIONS_DIR = "versions"
POINTER_FILE = "LATEST"
_NAME = re.compile(r"^\d{6}$")
_INCOMING = ".incoming-"


class NoModel(FileNotFoundError):
    """A save path that holds no published version (nor a model directory)."""


def version_name(number: int) -> str:
    """``000042`` for 42."""
    if number < 1 or number > 999_999:
        raise ValueError(f"version numbers run from 1 to 999999, got {number}")
    return f"{number:06d}"


def published(save_path: str | Path) -> list[str]:
    """Names of the whole versions under ``save_path``, oldest first."""
    folder = Path(save_path) / VERSIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _NAME.match(p.name) and (p / META_FILE).is_file())


def latest(save_path: str | Path) -> str | None:
    """The version ``LATEST`` names, or None before the first publish."""
    pointer = Path(save_path) / POINTER_FILE
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    if not _NAME.match(name) or not (Path(save_path) / VERSIONS_DIR / name / META_FILE).is_file():
        raise NoModel(f"{pointer} names {name!r}, which is not a published version under {save_path}")
    return name


def repair_pointer(save_path: str | Path) -> str | None:
    """Point ``LATEST`` at the newest whole version if a crash left it behind; return it."""
    names = published(save_path)
    if not names:
        return latest(save_path)
    pointed = Path(save_path) / POINTER_FILE
    current = pointed.read_text().strip() if pointed.is_file() else None
    if current != names[-1]:
        _switch_pointer(Path(save_path), names[-1])
    return names[-1]


def resolve(save_path: str | Path) -> Path:
    """The model directory a save path stands for: its latest version, or itself (old layout).

    Raises
    ------
    NoModel
        Nothing was published there yet.
    """
    path = Path(save_path)
    if (path / META_FILE).is_file():
        return path
    name = latest(path)
    if name is None:
        raise NoModel(f"{path} holds no model: no {META_FILE} and no published version ({POINTER_FILE})")
    return path / VERSIONS_DIR / name


def publish(save_path: str | Path, write: Callable[[Path], None]) -> str:
    """Publish a new version: ``write(folder)`` fills a fresh folder, which then appears whole.

    Parameters
    ----------
    save_path : path
        Created if missing. A folder holding an old-layout model (``model.json``) or
        unrelated files is refused.
    write : callable
        Writes the model into the folder it is given (e.g. ``TrainedModel.save``).

    Returns
    -------
    str
        The new version's name.
    """
    root = Path(save_path)
    _check_save_path(root)
    folder = root / VERSIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _remove_incoming(folder)
    existing = published(root)
    name = version_name(int(existing[-1]) + 1 if existing else 1)
    incoming = folder / f"{_INCOMING}{name}-{os.getpid()}"
    write(incoming)
    os.replace(incoming, folder / name)
    _fsync_dir(folder)
    _switch_pointer(root, name)
    return name


def _switch_pointer(root: Path, name: str) -> None:
    pointer = root / f".{POINTER_FILE}.{os.getpid()}"
    pointer.write_text(name + "\n")
    os.replace(pointer, root / POINTER_FILE)
    _fsync_dir(root)


def _check_save_path(root: Path) -> None:
    if not root.exists():
        return
    if not root.is_dir():
        raise ValueError(f"model path {root} exists and is not a directory")
    if (root / META_FILE).is_file():
        raise ValueError(f"{root} holds a single model saved by an older chestct; publish versions to a "
                         f"new path (or remove it)")
    unrelated = sorted(p.name for p in root.iterdir()
                       if p.name not in (VERSIONS_DIR, POINTER_FILE) and not p.name.startswith(f".{POINTER_FILE}."))
    if unrelated:
        raise ValueError(f"model path {root} holds other files {unrelated[:5]}; refusing to publish into it")


def _remove_incoming(folder: Path) -> None:
    """Crashed publishes (never visible as versions) of processes that are gone are cleared away."""
    for leftover in folder.glob(f"{_INCOMING}*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    # The renames are durable only once the folder itself is synced (POSIX).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
