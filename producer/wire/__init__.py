"""The chestct wire protocol: length-prefixed UTF-8 JSON frames.

A frame is a 4-byte big-endian unsigned payload length followed by that many
bytes of UTF-8 JSON holding one object with a ``"type"`` field. The full
specification (fields, conversation, error codes, limits, versioning) lives in
``docs/protocol.md``; this package is its one implementation, shared by the
producer and the consumers, and everything is used through it (``wire.hello``,
``wire.decode`` ...):

- :mod:`.protocol`: the version, limits, message types, error codes and exceptions;
- :mod:`.framing`: frames written and read (``encode``, ``decode``, the readers);
- :mod:`.validation`: every field of every message checked;
- :mod:`.messages`: the constructors and a batch's pixels.

Messages are plain dicts. Build them only with the constructors
(:func:`hello`, :func:`batch`, :func:`end`, :func:`error`, :func:`subscribe`,
:func:`ack`, :func:`auth`) so their field order, and therefore their bytes, are stable.
"""
from __future__ import annotations

from .framing import decode, encode, read_message, recv_message, send_message
from .messages import (ack, auth, batch, batch_frame, batch_pixels, end, error, hello, printable,
                       subscribe)
from .protocol import (ABSOLUTE_MAX_FRAME_BYTES, CONTROL_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES,
                       DEFAULT_PORT, ERROR_CODES, HEADER, MAX_INT, MAX_REASON_CHARS, MESSAGE_TYPES,
                       MIN_FRAME_LIMIT, PROTOCOL_VERSION, ChecksumMismatch, FileChanged, FrameTooLarge,
                       MalformedFrame, ProtocolVersionMismatch, TruncatedFrame, WireError)
from .validation import check_protocol, validate

__all__ = [
    "ABSOLUTE_MAX_FRAME_BYTES", "CONTROL_MAX_FRAME_BYTES", "DEFAULT_MAX_FRAME_BYTES", "DEFAULT_PORT",
    "ERROR_CODES", "HEADER", "MAX_INT", "MAX_REASON_CHARS", "MESSAGE_TYPES", "MIN_FRAME_LIMIT",
    "PROTOCOL_VERSION", "ChecksumMismatch", "FileChanged", "FrameTooLarge", "MalformedFrame",
    "ProtocolVersionMismatch", "TruncatedFrame", "WireError", "ack", "auth", "batch", "batch_frame",
    "batch_pixels", "check_protocol", "decode", "encode", "end", "error", "hello", "printable",
    "read_message", "recv_message", "send_message", "subscribe", "validate",
]
