"""The server's settings (:class:`ServerConfig`, validated once) and its counters (:class:`ServerStats`).

The stream itself is a :class:`producer.stream.StreamSpec`; these say how it is served.
"""
from __future__ import annotations

import collections
import os
import ssl
from dataclasses import dataclass, field

from . import budget, readahead, wire
from .image_cache import DEFAULT_IMAGE_CACHE_BYTES

#: Loopback only unless asked: a producer is never exposed by default (docs/security.md).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PREFETCH = 4
DEFAULT_SUBSCRIBE_TIMEOUT = 60.0
DEFAULT_SEND_TIMEOUT = 120.0
DEFAULT_WRITE_BUFFER_BYTES = 64 * 2**10
DEFAULT_STALL_TIMEOUT = 1.0
DEFAULT_SEND_BUFFER_BYTES = 256 * 2**10


@dataclass
class ServerConfig:
    """Network and pacing settings (the stream itself is a :class:`StreamSpec`).

    Attributes
    ----------
    host, port : str, int
        Where to listen; port 0 picks a free one (see ``ProducerServer.port``).
    sleep : float
        Seconds to wait after each batch sent on a connection.
    max_frame_bytes : int
        Largest frame the producer sends.
    control_max_frame_bytes : int
        Largest frame accepted from a consumer (they only send small control frames).
    prefetch : int
        Batches a connection builds ahead of the one being sent.
    read_ahead : int
        Batches built, at the lowest OS priority, after the furthest one any connection
        subscribed to, once no subscription is being served, for the subscriptions to
        come (:mod:`producer.readahead`); 0: none.
    workers : int
        Decoding threads shared by every connection.
    subscribe_timeout : float
        Seconds a connection may stay without a subscription (after hello or end).
    send_timeout : float
        Seconds a frame may wait for a consumer that does not read.
    progress : bool
        Show a tqdm bar of images sent.
    max_connections : int
        Connections served at once; more get a ``busy`` error and are closed.
    max_buffered_bytes : int
        Bytes of batch frames prepared and not yet handed to sockets, over all connections.
    image_cache_bytes : int
        Bytes of preprocessed images kept for replays and later epochs
        (:mod:`producer.image_cache`); 0: none.
    write_buffer_bytes : int
        Chunk size of frame writes and the transport's high-water mark.
    send_buffer_bytes : int or None
        The kernel send buffer of each connection (``SO_SNDBUF``); bounded so that a
        consumer that does not read is noticed after a few frames, not after the
        kernel's autotuned megabytes. None keeps the system's autotuning.
    stall_timeout : float
        Seconds a chunk may wait for a consumer before what was prepared for it is given
        back (at most half the ``send_timeout``).
    ssl_context : ssl.SSLContext or None
        Serve TLS with this context (:func:`transport.server_ssl_context`).
    token : str or None
        Require an ``auth`` frame with this shared secret before the ``hello``.
    """

    host: str = DEFAULT_HOST
    port: int = wire.DEFAULT_PORT
    sleep: float = 0.0
    max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES
    control_max_frame_bytes: int = wire.CONTROL_MAX_FRAME_BYTES
    prefetch: int = DEFAULT_PREFETCH
    read_ahead: int = readahead.DEFAULT_READ_AHEAD_BATCHES
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    subscribe_timeout: float = DEFAULT_SUBSCRIBE_TIMEOUT
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    progress: bool = True
    max_connections: int = budget.DEFAULT_MAX_CONNECTIONS
    max_buffered_bytes: int = budget.DEFAULT_MAX_BUFFERED_BYTES
    image_cache_bytes: int = DEFAULT_IMAGE_CACHE_BYTES
    write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    send_buffer_bytes: int | None = DEFAULT_SEND_BUFFER_BYTES
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if min(self.prefetch, self.workers, self.max_connections, self.max_buffered_bytes,
               self.write_buffer_bytes) < 1:
            raise ValueError("prefetch, workers, max_connections, max_buffered_bytes and "
                             "write_buffer_bytes must be >= 1")
        if self.read_ahead < 0 or self.image_cache_bytes < 0:
            raise ValueError("read_ahead and image_cache_bytes must be >= 0")
        if (self.sleep < 0 or self.subscribe_timeout <= 0 or self.send_timeout <= 0
                or self.stall_timeout <= 0):
            raise ValueError("sleep must be >= 0 and timeouts > 0")
        if self.token is not None and not self.token:
            raise ValueError("token must not be empty")


@dataclass
class ServerStats:
    """Counters for logs and tests (only touched from the event loop thread)."""

    connections_total: int = 0
    connections_active: int = 0
    batches_sent: int = 0
    images_sent: int = 0
    bytes_sent: int = 0
    inflight: int = 0          # batches submitted for building and not yet written out
    max_inflight: int = 0
    max_write_buffer: int = 0  # largest transport buffer seen right after queuing a chunk
    stalled: int = 0           # connections whose consumer is not reading right now
    stalls: int = 0            # times a connection gave its prepared batches back
    rebuilds: int = 0          # batches built again after a stall
    errors_sent: collections.Counter = field(default_factory=collections.Counter)
