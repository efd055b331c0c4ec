"""The message constructors, and the pixels of a batch message."""
from __future__ import annotations

import binascii
import math
import zlib
from typing import Any, Iterable, Mapping

import numpy as np
import pybase64

from .framing import _Base64Text, _check_limit, _frame
from .protocol import (DEFAULT_MAX_FRAME_BYTES, MAX_REASON_CHARS, PROTOCOL_VERSION, ChecksumMismatch,
                       MalformedFrame)
from .validation import validate



def printable(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` safe for a frame: valid UTF-8 (lone surrogates escaped), at most ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _skip_records(skipped: Iterable[Any]) -> list[dict]:
    records = []
    for item in skipped:
        if isinstance(item, Mapping):
            file_id, reason = item["id"], item["reason"]
        else:
            file_id, reason = item
        records.append({"id": str(file_id), "reason": printable(reason)})
    return records


def _checked(msg: dict) -> dict:
    validate(msg)
    return msg


def hello(*, stream_id: str, split: str, classes: Iterable[str], image_shape: Iterable[int],
          batch_size: int, total_batches: int | None, total_images: int | None,
          dtype: str = "uint8", **extra: Any) -> dict:
    """Build the ``hello`` message a producer sends first on every connection.

    ``extra`` carries descriptive fields (``preprocessing``, ``shuffle``, ``seed``,
    ``endless``, ``batches_per_epoch`` ...); they may not shadow the core fields.
    """
    msg = {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "stream_id": stream_id,
        "split": split,
        "classes": list(classes),
        "image_shape": [int(d) for d in image_shape],
        "dtype": dtype,
        "batch_size": batch_size,
        "total_batches": total_batches,
        "total_images": total_images,
    }
    clash = sorted(set(extra) & set(msg))
    if clash:
        raise MalformedFrame(f"hello extra fields may not override core fields: {clash}")
    msg.update(extra)
    return _checked(msg)


def batch(*, seq: int, epoch: int, ids: Iterable[str], labels: Iterable[int],
          pixels: np.ndarray, skipped: Iterable[Any] = ()) -> dict:
    """Build a ``batch`` message.

    Parameters
    ----------
    seq, epoch : int
        Position of the batch in the stream and the epoch it belongs to.
    ids : iterable of str
        Image ids (paths relative to the split folder), one per image.
    labels : iterable of int
        Class indices, one per image.
    pixels : numpy.ndarray
        ``uint8`` array of shape ``(N, H, W, C)``; sent C-ordered as base64 with a CRC32.
    skipped : iterable of (id, reason) pairs or {"id", "reason"} dicts
        Files that were meant for this batch but could not be decoded.
    """
    msg, data = _batch(seq, epoch, ids, labels, pixels, skipped)
    msg["data"] = _Base64Text(data)
    return _checked(msg)


def batch_frame(*, seq: int, epoch: int, ids: Iterable[str], labels: Iterable[int], pixels: np.ndarray,
                skipped: Iterable[Any] = (), max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """``encode(batch(...), max_frame_bytes)``, byte for byte, for a sender that needs only the
    frame: the base64 text never becomes a Python string (once base64 itself ran in SIMD,
    that copy of almost the whole frame was most of the encoding's cost)."""
    limit = _check_limit(max_frame_bytes)
    msg, data = _batch(seq, epoch, ids, labels, pixels, skipped)
    return _frame(_checked(msg), limit, data)


def _batch(seq, epoch, ids, labels, pixels, skipped) -> tuple[dict, bytes]:
    """A batch message with ``data`` empty (a placeholder in the same place), and its base64."""
    if not isinstance(pixels, np.ndarray):
        raise MalformedFrame(f"pixels must be a numpy array, got {type(pixels).__name__}")
    if pixels.dtype != np.uint8:
        raise MalformedFrame(f"pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim != 4:
        raise MalformedFrame(f"pixels must have shape (N, H, W, C), got {pixels.shape}")
    raw = np.ascontiguousarray(pixels)
    msg = {
        "type": "batch",
        "seq": seq,
        "epoch": epoch,
        "ids": [str(i) for i in ids],
        "labels": [int(label) for label in labels],
        "shape": [int(d) for d in raw.shape],
        "dtype": "uint8",
        "data": "",
        "crc32": zlib.crc32(raw.data),
        "skipped": _skip_records(skipped),
    }
    return msg, pybase64.b64encode(raw.data)


def end(*, batches: int, images: int, skipped: int, skipped_files: Iterable[Any] = ()) -> dict:
    """Build the ``end`` message closing a finite stream (counts cover what was sent)."""
    return _checked({
        "type": "end",
        "batches": batches,
        "images": images,
        "skipped": skipped,
        "skipped_files": _skip_records(skipped_files),
    })


def error(reason: str, code: str = "error", seq: int | None = None) -> dict:
    """Build an ``error`` message; the sender closes the connection after it."""
    msg = {"type": "error", "code": code, "reason": printable(reason)}
    if seq is not None:
        msg["seq"] = seq
    return _checked(msg)


def subscribe(from_seq: int = 0, to_seq: int | None = None) -> dict:
    """Build a ``subscribe`` message: batches ``from_seq`` up to ``to_seq`` exclusive (None = to the end)."""
    msg = {"type": "subscribe", "from_seq": from_seq}
    if to_seq is not None:
        msg["to_seq"] = to_seq
    return _checked(msg)


def ack(seq: int) -> dict:
    """Build an ``ack`` message: the consumer has durably processed batch ``seq``."""
    return _checked({"type": "ack", "seq": seq})


def auth(token: str) -> dict:
    """Build an ``auth`` message: a consumer's first frame when the producer requires a token."""
    if not isinstance(token, str) or not token:
        raise MalformedFrame("auth.token must be a non-empty string")
    return _checked({"type": "auth", "token": token})


def batch_pixels(msg: Mapping[str, Any]) -> np.ndarray:
    """Decode a batch message's pixels.

    Returns
    -------
    numpy.ndarray
        Writable ``uint8`` array of ``msg["shape"]``.

    Raises
    ------
    MalformedFrame
        If ``data`` is not valid base64.
    ChecksumMismatch
        If the byte count does not match ``shape`` or the CRC32 does not match ``crc32``.
    """
    try:
        # SIMD, and strict: canonical padding only (the stdlib's validate=True lets excess '=' through).
        raw = pybase64.b64decode(msg["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedFrame(f"batch {msg.get('seq')}: data is not base64: {exc}") from None
    shape = tuple(msg["shape"])
    expected = math.prod(shape)
    if len(raw) != expected:
        raise ChecksumMismatch(
            f"batch {msg.get('seq')}: {len(raw)} pixel bytes, shape {list(shape)} needs {expected}")
    crc = zlib.crc32(raw)
    if crc != msg["crc32"]:
        raise ChecksumMismatch(
            f"batch {msg.get('seq')}: crc32 of pixels is {crc}, message says {msg['crc32']}")
    return np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(shape)

