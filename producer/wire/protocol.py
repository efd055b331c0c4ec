"""What the protocol fixes: its version, the frame limits, the message types, the error
codes, and the exceptions that carry them (docs/protocol.md)."""
from __future__ import annotations

import struct

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

