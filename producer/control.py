"""What a consumer sends the server: the ``auth`` frame first (with a token), then control frames.

Control frames are read concurrently with the batches being sent: ``ack`` is noted,
``subscribe`` is queued for the handler, anything else (or garbage) ends the connection
through :meth:`producer.connection.Connection.fail`.
"""
from __future__ import annotations

import asyncio
import logging

from . import transport, wire
from .connection import EOF, Connection

log = logging.getLogger(__name__)


async def authenticate(reader: asyncio.StreamReader, conn: Connection, token: str, max_frame_bytes: int,
                       timeout: float) -> bool:
    """Read the ``auth`` frame; True when the token matches, False on a silent hang-up.

    Raises
    ------
    wire.WireError
        ``unauthorized`` for a wrong token or another first frame (nothing of the
        stream is told), ``timeout`` when nothing comes in time, or the frame's error.
    """
    try:
        msg = await conn.guard(wire.read_message(reader, max_frame_bytes), timeout)
    except asyncio.TimeoutError:
        raise wire.WireError(f"no auth frame within {timeout:g}s", code="timeout") from None
    except (ConnectionError, OSError):
        return False
    if msg is None:
        return False
    if not transport.token_matches(token, msg):
        raise wire.WireError("authentication failed: this producer requires a first frame "
                             '{"type": "auth", "token": ...} with the right token', code="unauthorized")
    return True


async def read_control(reader: asyncio.StreamReader, conn: Connection, max_frame_bytes: int) -> None:
    """Read the consumer's frames: acks are noted, subscribes queued, anything else ends it."""
    try:
        while True:
            msg = await wire.read_message(reader, max_frame_bytes)
            if msg is None:
                conn.eof = True
                await conn.inbox.put(EOF)
                return
            if msg["type"] == "ack":
                conn.last_ack = msg["seq"] if conn.last_ack is None else max(conn.last_ack, msg["seq"])
            elif msg["type"] == "subscribe":
                conn.subscribes_queued += 1
                await conn.inbox.put(msg)
            else:
                raise wire.WireError(f"a consumer may send subscribe or ack, not {msg['type']}",
                                     code="unexpected_message")
    except wire.WireError as exc:
        conn.fail(exc)
    except (ConnectionError, OSError) as exc:
        conn.eof = True
        await conn.inbox.put(EOF)
        log.debug("connection %s: control read ended: %s", conn, exc)
    except Exception as exc:  # a bug: the handler must still hear of it
        log.debug("control reader details", exc_info=True)
        conn.fail(wire.WireError(f"internal error reading control frames: {type(exc).__name__}: {exc}",
                                 code="internal"))
