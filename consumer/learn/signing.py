"""Optional integrity of model directories with a key kept outside them (HMAC-SHA256).

model.json lists the sha256 of every file, but it sits in the same folder: whoever can
write the folder can rewrite it. With a key (``--model-key-file FILE`` or the
``CHESTCT_MODEL_KEY`` environment variable), ``train`` writes ``model.json.hmac``, an
HMAC-SHA256 of model.json's exact bytes, and ``predict`` refuses a model whose signature
is missing or wrong. Without a key nothing is signed or required.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

SIGNATURE_FILE = "model.json.hmac"
KEY_ENV = "CHESTCT_MODEL_KEY"
#: A shorter key is guessable.
MIN_KEY_BYTES = 16


class KeyError_(ValueError):
    """A model key that cannot be used."""


def load_key(key_file: str | Path | None = None) -> bytes | None:
    """The model key: from ``key_file`` (mode 600), else ``CHESTCT_MODEL_KEY``, else None."""
    if key_file is not None:
        path = Path(key_file)
        try:
            mode = path.stat().st_mode
            key = path.read_bytes().strip()
        except OSError as exc:
            raise KeyError_(f"model key file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
        if mode & 0o077:
            raise KeyError_(f"model key file {str(path)!r} is readable by others (mode {stat.S_IMODE(mode):o}); "
                            f"run: chmod 600 {path}")
    else:
        text = os.environ.get(KEY_ENV)
        if not text:
            return None
        key = text.strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise KeyError_(f"the model key has {len(key)} bytes; use at least {MIN_KEY_BYTES} "
                        f"(e.g. openssl rand -hex 32)")
    return key


def signature(key: bytes, manifest: bytes) -> str:
    """Hex HMAC-SHA256 of the manifest's bytes."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def sign(directory: Path, key: bytes, manifest: bytes) -> None:
    (Path(directory) / SIGNATURE_FILE).write_text(signature(key, manifest) + "\n")


def verify(directory: Path, key: bytes, manifest: bytes) -> str | None:
    """None when the signature matches, else why the model must be refused."""
    path = Path(directory) / SIGNATURE_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        return f"a model key is configured but {directory} is not signed ({SIGNATURE_FILE} is missing)"
    except OSError as exc:
        return f"{path} cannot be read: {exc}"
    if not hmac.compare_digest(stored.encode(), signature(key, manifest).encode()):
        return f"{path} does not match model.json under the configured key: the model was changed or " \
               f"signed with another key"
    return None
