"""One consumer connection's state, and how its failures reach the handler."""
from __future__ import annotations

import asyncio

from . import wire

#: Put in a connection's inbox when the consumer closed its side.
EOF = object()


class NotReading(Exception):
    """The consumer did not take a frame within the send timeout."""


class Abort(Exception):
    """The connection must end without an error frame (one would land inside a frame)."""


class Outgoing:
    """The frame being written to one connection; ``data`` is None while it is given back."""

    def __init__(self, seq: int, data: bytes):
        self.seq, self.data = seq, data


class Connection:
    """State of one consumer connection.

    Failures found elsewhere (a bad control frame, shutdown) are delivered to the
    handler through the ``failed`` future that every wait of the handler races
    against, rather than by cancelling the handler: cancellation can be lost when
    it coincides with the completion of what is awaited.
    """

    def __init__(self, number: int, peer: str):
        self.number = number
        self.peer = peer
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.failed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.last_ack: int | None = None
        self.eof = False
        self.subscribes_queued = 0

    def __str__(self) -> str:
        return f"#{self.number} {self.peer}"

    def fail(self, failure: wire.WireError) -> None:
        """Record why the connection must end; the handler's current wait raises it."""
        if not self.failed.done():
            self.failed.set_result(failure)

    async def guard(self, awaitable, timeout: float | None = None):
        """Await ``awaitable`` unless the connection fails first.

        Raises
        ------
        wire.WireError
            The failure recorded by :meth:`fail`.
        asyncio.TimeoutError
            If ``timeout`` seconds pass first.
        """
        task = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait((task, self.failed), timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        if self.failed.done():
            raise self.failed.result()
        raise asyncio.TimeoutError
