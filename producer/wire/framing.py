"""Frames: a 4-byte big-endian length and compact UTF-8 JSON, read and written."""
from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, Mapping

from .protocol import (ABSOLUTE_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, HEADER, FrameTooLarge,
                       MalformedFrame, TruncatedFrame)
from .validation import validate



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

