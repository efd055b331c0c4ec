"""The chestct wire protocol: length-prefixed UTF-8 JSON frames.

A frame is a 4-byte big-endian unsigned payload length followed by that many
bytes of UTF-8 JSON holding one object with a ``"type"`` field. The full
specification (fields, conversation, error codes, limits, versioning) lives in
``docs/protocol.md``; this module is its one implementation, shared by the
producer and the consumers.

Messages are plain dicts. Build them only with the constructors below
(:func:`hello`, :func:`batch`, :func:`end`, :func:`error`, :func:`subscribe`,
:func:`ack`, :func:`auth`) so their field order, and therefore their bytes, are stable.
"""
from __future__ import annotations

import asyncio
import binascii
import json
import math
import socket
import struct
import zlib
from typing import Any, Iterable, Mapping

import numpy as np
import pybase64

# 2: hello.preprocessing holds only pixel-shaping settings, limits moved to hello.limits;
# the auth message; the busy, unauthorized and file_changed error codes.
PROTOCOL_VERSION = 2
DEFAULT_MAX_FRAME_BYTES = 64 * 2**20
#: The producer's TCP port unless told otherwise (both sides' default).
DEFAULT_PORT = 6100
#: The smallest frame limit either side accepts: a hello alone takes a few hundred bytes.
MIN_FRAME_LIMIT = 1024
# Frames a consumer sends (subscribe, ack) are tiny; a server reads them with this limit.
CONTROL_MAX_FRAME_BYTES = 64 * 2**10
# The length prefix is a uint32, so no frame can exceed this whatever the configured limit.
ABSOLUTE_MAX_FRAME_BYTES = 2**32 - 1

HEADER = struct.Struct(">I")
# Largest integer any field may hold: a signed 64-bit value, so every peer can store it.
MAX_INT = 2**63 - 1
# Longest ``reason`` an error or skip record carries; longer ones are cut (they are for humans).
MAX_REASON_CHARS = 500

MESSAGE_TYPES = ("hello", "batch", "end", "error", "subscribe", "ack", "auth")

#: Codes an ``error`` message may carry (see docs/protocol.md, "Error codes").
ERROR_CODES = (
    "frame_too_large",     # a frame's length prefix exceeded the receiver's limit
    "malformed_frame",     # not UTF-8 JSON, not an object, unknown type, wrong field types
    "truncated_frame",     # EOF in the middle of a header or payload
    "checksum_mismatch",   # pixels do not match crc32 or shape
    "unexpected_message",  # a valid message the receiver does not accept at this point
    "bad_range",           # subscribe range outside the stream
    "timeout",             # the peer did not send or read in time
    "shutdown",            # the producer is stopping
    "busy",                # the producer already serves --max-connections connections
    "unauthorized",        # the auth token is missing or wrong
    "file_changed",        # a file of the batch changed since the stream started
    "internal",            # a bug on the sender's side; the connection is closed
    "error",               # unspecified
)


class WireError(Exception):
    """Base class of every protocol error.

    Parameters
    ----------
    message : str
        Human readable explanation.
    code : str, optional
        Short machine readable code (one of :data:`ERROR_CODES`); defaults to the
        class's ``default_code``.
    seq : int, optional
        The batch concerned, when there is one (it goes into the ``error`` message).
    """

    default_code = "error"

    def __init__(self, message: str, code: str | None = None, seq: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.seq = seq

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class FrameTooLarge(WireError):
    """A frame's payload is longer than the allowed maximum."""

    default_code = "frame_too_large"


class MalformedFrame(WireError, ValueError):
    """A payload that is not a valid message (bad UTF-8/JSON, wrong shape or types)."""

    default_code = "malformed_frame"


class TruncatedFrame(WireError):
    """The stream ended in the middle of a frame header or payload."""

    default_code = "truncated_frame"


class ChecksumMismatch(WireError):
    """Decoded pixel bytes do not match the batch's ``crc32`` or ``shape``."""

    default_code = "checksum_mismatch"


class FileChanged(WireError):
    """A file's content changed after the stream started; its batches are not served."""

    default_code = "file_changed"


class ProtocolVersionMismatch(WireError):
    """The peer speaks a protocol version this code does not understand."""

    default_code = "protocol_version"


# --------------------------------------------------------------------------- framing


def _check_limit(max_frame_bytes: int) -> int:
    if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int):
        raise TypeError(f"max_frame_bytes must be an int, got {type(max_frame_bytes).__name__}")
    if max_frame_bytes < 2:
        raise ValueError(f"max_frame_bytes must be >= 2 (the smallest JSON object), got {max_frame_bytes}")
    return min(max_frame_bytes, ABSOLUTE_MAX_FRAME_BYTES)


def encode(msg: Mapping[str, Any], max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Serialise one message into a frame.

    Parameters
    ----------
    msg : mapping
        A message built by one of the constructors.
    max_frame_bytes : int
        Largest payload (JSON bytes, without the 4-byte header) allowed.

    Returns
    -------
    bytes
        4-byte big-endian length followed by compact UTF-8 JSON.

    Raises
    ------
    MalformedFrame
        If ``msg`` is not a valid message.
    FrameTooLarge
        If the payload is longer than ``max_frame_bytes``.
    """
    limit = _check_limit(max_frame_bytes)
    validate(msg)
    return _frame(msg, limit)


class _Base64Text(str):
    """Pixel data made by :func:`batch`: base64 text, which needs no JSON escaping.

    It keeps the encoder's ASCII bytes so :func:`encode` can splice them into the
    frame without another pass or copy over the largest part of the message.
    """

    def __new__(cls, ascii_bytes: bytes) -> "_Base64Text":
        text = super().__new__(cls, ascii_bytes.decode("ascii"))
        text.ascii_bytes = ascii_bytes
        return text


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _frame(msg: Mapping[str, Any], limit: int, data: bytes | None = None) -> bytes:
    """Header + compact UTF-8 JSON of ``msg``; the payload is byte for byte ``json.dumps``'s.

    A batch's base64 text (almost all of the frame) is spliced in rather than scanned
    character by character by the JSON encoder, and the frame is assembled in one copy.
    ``data``: that text as ASCII bytes, in place of ``msg["data"]`` (see :func:`batch_frame`).
    """
    if data is None and type(msg.get("data")) is _Base64Text:
        data = msg["data"].ascii_bytes
    if data is None:
        parts = [_json(msg)]
    else:
        parts = [b"{"]
        for i, (key, value) in enumerate(msg.items()):
            parts.append(b"," + _json(key) + b":" if i else _json(key) + b":")
            parts.extend((b'"', data, b'"') if key == "data" else (_json(value),))
        parts.append(b"}")
    length = sum(map(len, parts))
    if length > limit:
        raise FrameTooLarge(f"{msg.get('type')} message is {length} bytes, over the {limit}-byte frame limit")
    return b"".join([HEADER.pack(length), *parts])


def _reject_constant(name: str) -> Any:
    raise MalformedFrame(f"JSON constant {name} is not allowed")


def decode(payload: bytes | bytearray | memoryview) -> dict:
    """Parse and validate one frame payload (without its length header).

    Parameters
    ----------
    payload : bytes-like
        UTF-8 JSON text of one message.

    Returns
    -------
    dict
        The message, with every field checked for its type.

    Raises
    ------
    MalformedFrame
        If the payload is not UTF-8, not JSON, not an object, has a missing or
        unknown ``type``, or a field of the wrong type.
    """
    try:
        text = str(payload, "utf-8")  # bytes(payload) first cost a copy: 2.8 ms of a 2.8 MB frame
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        msg = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedFrame(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise MalformedFrame("payload JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer over Python's int-parsing digit limit
        raise MalformedFrame(f"payload JSON has an unusable value: {str(exc)[:120]}") from None
    validate(msg)
    return msg


def _header_length(header: bytes, limit: int) -> int:
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise FrameTooLarge(f"frame announces {length} bytes, over the {limit}-byte limit")
    return length


async def read_message(reader: asyncio.StreamReader,
                       max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> dict | None:
    """Read one message from an asyncio stream.

    Returns
    -------
    dict or None
        The validated message, or ``None`` on a clean end of stream between frames.

    Raises
    ------
    TruncatedFrame, FrameTooLarge, MalformedFrame
        On a broken frame; the stream is then out of sync and must be closed.
    """
    limit = _check_limit(max_frame_bytes)
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise TruncatedFrame(f"end of stream after {len(exc.partial)} of 4 header bytes") from None
    length = _header_length(header, limit)
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise TruncatedFrame(
            f"end of stream after {len(exc.partial)} of {length} payload bytes") from None
    return decode(payload)


def _recv_exactly(sock: socket.socket, count: int, what: str) -> bytearray | None:
    """Read exactly ``count`` bytes; None if the peer closed before the first byte."""
    buf = bytearray(count)
    view = memoryview(buf)
    got = 0
    while got < count:
        n = sock.recv_into(view[got:], count - got)
        if n == 0:
            if got == 0:
                return None
            raise TruncatedFrame(f"end of stream after {got} of {count} {what} bytes")
        got += n
    return buf


def recv_message(sock: socket.socket, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> dict | None:
    """Blocking twin of :func:`read_message` for a plain socket, with the same result and
    frame errors; socket timeouts and OS errors propagate unchanged."""
    limit = _check_limit(max_frame_bytes)
    header = _recv_exactly(sock, HEADER.size, "header")
    if header is None:
        return None
    length = _header_length(bytes(header), limit)
    payload = _recv_exactly(sock, length, "payload")
    if payload is None:
        raise TruncatedFrame(f"end of stream after 0 of {length} payload bytes")
    return decode(payload)


def send_message(sock: socket.socket, msg: Mapping[str, Any],
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
    """Encode ``msg`` and send the whole frame on a blocking socket."""
    sock.sendall(encode(msg, max_frame_bytes))


# --------------------------------------------------------------------------- validation


def _shown(value: Any, limit: int = 60) -> str:
    """A peer's value for an error message, never raising (``repr`` of a 5 000-digit int does)."""
    if isinstance(value, str):
        return _quoted(value, limit)
    if _is_int(value):
        return _short_int(value)
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return ascii(value)[:limit]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need(msg: Mapping[str, Any], key: str) -> Any:
    if key not in msg:
        raise MalformedFrame(f"{msg['type']} message is missing field {key!r}")
    return msg[key]


def _int_field(msg, key, *, minimum=0, maximum=MAX_INT, optional=False):
    if optional and msg.get(key) is None:
        return
    value = _need(msg, key)
    if not _is_int(value):
        raise MalformedFrame(f"{msg['type']}.{key} must be an integer, got {type(value).__name__}")
    if value < minimum or value > maximum:
        bound = f">= {minimum}" if value < minimum else f"<= {maximum}"
        raise MalformedFrame(f"{msg['type']}.{key} must be {bound}, got {_short_int(value)}")


def _short_int(value: int) -> str:
    """An integer for an error message: huge ones by their size, not their 4 000 digits."""
    return str(value) if -MAX_INT <= value <= MAX_INT else f"an integer of {value.bit_length()} bits"


def _str_field(msg, key, *, allow_empty=False):
    value = _need(msg, key)
    if not isinstance(value, str):
        raise MalformedFrame(f"{msg['type']}.{key} must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise MalformedFrame(f"{msg['type']}.{key} must not be empty")


def _list_field(msg, key, item_check, item_desc, *, length=None):
    value = _need(msg, key)
    if not isinstance(value, list):
        raise MalformedFrame(f"{msg['type']}.{key} must be a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not item_check(item):
            raise MalformedFrame(f"{msg['type']}.{key}[{i}] must be {item_desc}, got {_shown(item)}")
    if length is not None and len(value) != length:
        raise MalformedFrame(f"{msg['type']}.{key} must have {length} items, got {len(value)}")
    return value


def _is_skip_record(item: Any) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("id"), str)
            and isinstance(item.get("reason"), str))


def _is_dim(item: Any) -> bool:
    return _is_int(item) and 0 <= item <= MAX_INT


def _validate_hello(msg):
    _int_field(msg, "protocol", minimum=1)
    _str_field(msg, "stream_id")
    _str_field(msg, "split")
    classes = _list_field(msg, "classes", lambda c: isinstance(c, str) and c != "", "a non-empty string")
    if not classes:
        raise MalformedFrame("hello.classes must not be empty")
    shape = _list_field(msg, "image_shape", lambda d: _is_int(d) and 0 < d <= MAX_INT, "a positive integer",
                        length=3)
    if shape[2] not in (1, 3):
        raise MalformedFrame(f"hello.image_shape channels must be 1 or 3, got {shape[2]}")
    _str_field(msg, "dtype")
    _int_field(msg, "batch_size", minimum=1)
    _int_field(msg, "total_batches", optional=True)
    _int_field(msg, "total_images", optional=True)


def _validate_batch(msg):
    _int_field(msg, "seq")
    _int_field(msg, "epoch")
    shape = _list_field(msg, "shape", _is_dim, "a non-negative integer", length=4)
    ids = _list_field(msg, "ids", lambda s: isinstance(s, str), "a string")
    labels = _list_field(msg, "labels", _is_dim, "a non-negative integer")
    if not (len(ids) == len(labels) == shape[0]):
        raise MalformedFrame(
            f"batch has {len(ids)} ids, {len(labels)} labels and shape[0]={shape[0]}; they must agree")
    if _need(msg, "dtype") != "uint8":
        raise MalformedFrame(f"batch.dtype must be 'uint8', got {_shown(msg['dtype'])}")
    _str_field(msg, "data", allow_empty=True)
    _int_field(msg, "crc32", maximum=2**32 - 1)
    _list_field(msg, "skipped", _is_skip_record, "an object {id: str, reason: str}")


def _validate_end(msg):
    _int_field(msg, "batches")
    _int_field(msg, "images")
    _int_field(msg, "skipped")
    _list_field(msg, "skipped_files", _is_skip_record, "an object {id: str, reason: str}")


def _validate_error(msg):
    _str_field(msg, "code")
    _str_field(msg, "reason", allow_empty=True)
    _int_field(msg, "seq", optional=True)


def _validate_subscribe(msg):
    _int_field(msg, "from_seq")
    _int_field(msg, "to_seq", optional=True)
    if msg.get("to_seq") is not None and msg["to_seq"] < msg["from_seq"]:
        raise MalformedFrame(
            f"subscribe.to_seq ({msg['to_seq']}) must be >= from_seq ({msg['from_seq']})")


def _validate_ack(msg):
    _int_field(msg, "seq")


def _validate_auth(msg):
    _str_field(msg, "token")


_VALIDATORS = {
    "hello": _validate_hello,
    "batch": _validate_batch,
    "end": _validate_end,
    "error": _validate_error,
    "subscribe": _validate_subscribe,
    "ack": _validate_ack,
    "auth": _validate_auth,
}


def validate(msg: Any) -> None:
    """Check that ``msg`` is a well-formed message of a known type.

    Unknown extra fields are allowed (forward compatibility, see docs/protocol.md).

    Raises
    ------
    MalformedFrame
        Describing the first problem found.
    """
    if not isinstance(msg, dict):
        raise MalformedFrame(f"a message must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise MalformedFrame("message has no string 'type' field")
    check = _VALIDATORS.get(kind)
    if check is None:
        raise MalformedFrame(f"unknown message type {_quoted(kind)}; known: {', '.join(MESSAGE_TYPES)}")
    check(msg)


def _quoted(text: str, limit: int = 40) -> str:
    """A peer's string for an error message: escaped (no lone surrogates, no control bytes), cut short."""
    return ascii(text[:limit]) + ("..." if len(text) > limit else "")


def check_protocol(hello_msg: Mapping[str, Any]) -> None:
    """Raise :class:`ProtocolVersionMismatch` unless ``hello_msg`` speaks our version."""
    version = hello_msg.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionMismatch(
            f"producer speaks protocol {version}, this client understands {PROTOCOL_VERSION}")


# --------------------------------------------------------------------------- constructors


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
