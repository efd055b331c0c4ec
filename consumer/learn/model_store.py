"""A model directory on disk: estimators in skops format, arrays as .npy, model.json.

Layout::

    model_dir/
      model.json          format version, metadata, sha256 of every other file
      estimator.skops     scikit-learn objects (skops.io, never pickle)
      codebook.npy        arrays (np.save, loaded with allow_pickle=False)
      spark_model/...     Spark ML's own writer output (engine "mllib")

Loading checks, before anything is deserialized, that model.json has our format
version, that every listed file exists with its recorded sha256 and that no unlisted
file was added; skops files must hold only types on :data:`TRUSTED_TYPES` (plus what
the caller explicitly trusts). Any failure raises :class:`ModelRefused`.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from . import signing

FORMAT = "chestct-model"
FORMAT_VERSION = 1
META_FILE = "model.json"

#: Types beyond skops' own defaults that our estimators need. Everything else is refused.
TRUSTED_TYPES = frozenset({
    "sklearn.tree._tree.Tree",
})


class ModelRefused(RuntimeError):
    """A model directory that must not be loaded (tampered, untrusted, incomplete)."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model_dir(directory, *, estimators: Mapping[str, object] | None = None,
                   arrays: Mapping[str, np.ndarray] | None = None, meta: dict, key: bytes | None = None) -> Path:
    """Write estimators (skops), arrays (.npy) and model.json with file hashes.

    Files already in ``directory`` (for example a Spark ML model written there by its
    own writer) are hashed and listed too.

    Parameters
    ----------
    directory : path-like
        Created if missing.
    estimators : mapping name -> object
        Saved as ``<name>.skops``.
    arrays : mapping name -> ndarray
        Saved as ``<name>.npy``; must not be object arrays.
    meta : dict
        JSON-serializable metadata; stored under model.json's ``meta`` key.
    key : bytes, optional
        Sign model.json with it (:mod:`consumer.learn.signing`).

    Returns
    -------
    Path
        The directory.
    """
    import skops.io as sio

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, obj in (estimators or {}).items():
        sio.dump(obj, directory / f"{_check_name(name)}.skops")
    for name, arr in (arrays or {}).items():
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; only numeric arrays are stored")
        np.save(directory / f"{_check_name(name)}.npy", arr, allow_pickle=False)
    files = {rel: sha256_file(directory / rel) for rel in _listing(directory)}
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "meta": meta,
        "files": files,
    }
    manifest = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    (directory / META_FILE).write_bytes(manifest)
    if key is not None:
        signing.sign(directory, key, manifest)
    return directory


def read_meta(directory, key: bytes | None = None) -> dict:
    """Return model.json's ``meta`` after checking its signature (with a key), format and file hashes.

    Raises
    ------
    ModelRefused
        Missing or unreadable model.json, another format version, a missing, changed
        or unlisted file; with a key, a missing or wrong signature.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise ModelRefused(f"{directory} is not a model directory: {META_FILE} is missing")
    try:
        manifest = meta_path.read_bytes()
    except OSError as exc:
        raise ModelRefused(f"{meta_path} cannot be read: {exc}") from exc
    if key is not None:
        problem = signing.verify(directory, key, manifest)
        if problem:
            raise ModelRefused(problem)
    try:
        document = json.loads(manifest.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelRefused(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelRefused(f"{meta_path} is not a {FORMAT} model description")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelRefused(f"{meta_path} has format version {version!r}; this chestct reads version "
                           f"{FORMAT_VERSION} only (retrain or use the matching chestct release)")
    files = document.get("files")
    if not isinstance(files, dict) or not isinstance(document.get("meta"), dict):
        raise ModelRefused(f"{meta_path} lacks its 'files' or 'meta' section")
    for rel, expected in sorted(files.items()):
        path = directory / rel
        if not _inside(directory, path):
            raise ModelRefused(f"{meta_path} lists {rel!r}, which is outside the model directory")
        if not path.is_file():
            raise ModelRefused(f"model file {rel!r} listed in {META_FILE} is missing from {directory}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelRefused(f"model file {rel!r} does not match its sha256 in {META_FILE} "
                               f"(expected {expected[:12]}..., found {actual[:12]}...): "
                               f"the file was changed after the model was saved")
    extra = sorted(set(_listing(directory)) - set(files))
    if extra:
        raise ModelRefused(f"{directory} holds files not listed in {META_FILE}: {extra}")
    return document["meta"]


def load_estimator(directory, name: str, trusted: Iterable[str] = ()) -> object:
    """Load ``<name>.skops`` if it holds only trusted types.

    Call :func:`read_meta` first: it verifies the hashes.

    Parameters
    ----------
    trusted : iterable of str
        Extra fully qualified type names the caller trusts on top of
        :data:`TRUSTED_TYPES`. ``True`` (trust everything) is refused.

    Raises
    ------
    ModelRefused
        The file is missing or holds a type nobody trusted.
    """
    import skops.io as sio

    if isinstance(trusted, (bool, str)):
        raise TypeError("trusted must be an iterable of type names (trusting everything is not allowed)")
    path = Path(directory) / f"{_check_name(name)}.skops"
    if not path.is_file():
        raise ModelRefused(f"model file {path.name} is missing from {directory}")
    allowed = TRUSTED_TYPES | frozenset(trusted)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt archive raises many kinds of errors
        raise ModelRefused(f"{path} is not a readable skops file: {exc}") from exc
    refused = sorted(set(untrusted) - allowed)
    if refused:
        raise ModelRefused(f"{path} holds types that are not trusted: {refused}; "
                           f"refusing to load it")
    return sio.load(path, trusted=sorted(untrusted))


def load_array(directory, name: str) -> np.ndarray:
    """Load ``<name>.npy`` without pickle."""
    path = Path(directory) / f"{_check_name(name)}.npy"
    if not path.is_file():
        raise ModelRefused(f"model file {path.name} is missing from {directory}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ModelRefused(f"{path} is not a plain numeric array: {exc}") from exc


def prepare_dir(directory: Path) -> None:
    """Make ``directory`` ready for a new model: a previous model there is replaced, anything else refused."""
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"model path {directory} exists and is not a directory")
        if any(directory.iterdir()):
            if not (directory / META_FILE).is_file():
                raise ValueError(f"model directory {directory} is not empty and holds no model; "
                                 f"refusing to overwrite it")
            shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


def _listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name not in (META_FILE, signing.SIGNATURE_FILE))


def _inside(directory: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _check_name(name: str) -> str:
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"model file names must be alphanumeric (with _ or -), got {name!r}")
    return name
