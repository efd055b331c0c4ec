"""Checking a message's fields: every type, bound and length (docs/protocol.md)."""
from __future__ import annotations

from typing import Any, Mapping

from .protocol import (MAX_INT, MESSAGE_TYPES, PROTOCOL_VERSION, MalformedFrame,
                       ProtocolVersionMismatch)



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

