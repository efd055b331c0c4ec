"""Blocking TCP client for the chestct producer: connect with retries, read hello, subscribe.

Used on the Spark driver (to learn the stream's ``hello``) and in executors (each source
partition subscribes to its own range of batch seqs). Everything here is synchronous
plain-socket code: Spark's Python workers are not asyncio programs.
"""
from __future__ import annotations

import functools
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from producer import wire

from . import settings

log = logging.getLogger("chestct.client")


class ProducerUnavailable(ConnectionError):
    """The producer could not be reached (or sent no hello) before the connect timeout."""


class StreamMismatch(RuntimeError):
    """The producer now serves a different stream than the one this query started on."""


class ProducerRestarting(ConnectionError):
    """The producer said it is stopping (or too busy for now): reconnect and resume, as after a lost
    connection, within the connect timeout."""


#: Producer error codes that mean "come back later" rather than "this stream is wrong".
RETRY_LATER_CODES = ("shutdown", "busy")


class ProducerError(RuntimeError):
    """The producer sent an ``error`` message."""

    def __init__(self, message: str, code: str, seq: int | None):
        super().__init__(message)
        self.code = code
        self.seq = seq


@dataclass(frozen=True)
class ConnectConfig:
    """Where the producer is and how patiently to talk to it.

    Parameters
    ----------
    host, port : str, int
        Producer address.
    connect_timeout : float
        Seconds to keep retrying while the producer is not up (or restarting) before
        giving up with :class:`ProducerUnavailable`.
    read_timeout : float
        Seconds to wait for the next frame on an open connection before failing; it must
        cover the producer's slowest batch (``--sleep`` pacing, decoding).
    max_frame_bytes : int
        Largest frame accepted; a bigger announced frame fails as ``FrameTooLarge``.
    retry_initial, retry_max : float
        First and largest pause between connection attempts (exponential backoff).
    tls_ca : str, optional
        PEM file of the CA (or self-signed certificate) of a producer serving TLS; the
        connection is then TLS 1.2+ with the certificate and hostname checked.
    token_file : str, optional
        File holding the producer's shared token (mode 600), sent as the first frame.
        Both files are read where the connection is made: the driver and every executor.
    """

    host: str = settings.DEFAULT_HOST
    port: int = settings.DEFAULT_PORT
    connect_timeout: float = settings.DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = settings.DEFAULT_READ_TIMEOUT
    max_frame_bytes: int = settings.DEFAULT_MAX_FRAME_BYTES
    retry_initial: float = settings.RETRY_INITIAL
    retry_max: float = settings.RETRY_MAX
    tls_ca: str | None = None
    token_file: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for name in ("connect_timeout", "read_timeout", "retry_initial", "retry_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.max_frame_bytes < settings.MIN_MAX_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes must be >= {settings.MIN_MAX_FRAME_BYTES}, "
                             f"got {self.max_frame_bytes}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """Exponential backoff: initial, 2*initial, ... capped at ``maximum`` (forever)."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2.0, maximum)


def check_hello(msg: dict | None, address: str) -> dict:
    """Validate the first message of a connection: it must be a hello in our protocol."""
    if msg is None:
        raise wire.TruncatedFrame(f"producer at {address} closed the connection before its hello")
    if msg["type"] == "error" and msg["code"] in RETRY_LATER_CODES:
        raise ProducerRestarting(f"producer at {address} is not serving now: [{msg['code']}] {msg['reason']}")
    if msg["type"] == "error":
        raise ProducerError(f"producer at {address} refused the connection: "
                            f"[{msg['code']}] {msg['reason']}", msg["code"], msg.get("seq"))
    if msg["type"] != "hello":
        raise wire.MalformedFrame(f"producer at {address} sent {msg['type']!r} before its hello",
                                  code="unexpected_message")
    wire.check_protocol(msg)
    return msg


class ProducerConnection:
    """One open connection to the producer, hello already read.

    Use :func:`open_connection` to get one; close it (or use ``with``) when done.
    """

    def __init__(self, sock: socket.socket, hello: dict, config: ConnectConfig):
        self.sock = sock
        self.hello = hello
        self.config = config

    def subscribe(self, from_seq: int = 0, to_seq: int | None = None) -> None:
        """Ask for batches ``from_seq`` .. ``to_seq`` (exclusive; None = to the end)."""
        wire.send_message(self.sock, wire.subscribe(from_seq=from_seq, to_seq=to_seq))

    def recv(self) -> dict | None:
        """Next message, or None on a clean end of stream. Wire errors propagate.

        Raises
        ------
        ProducerRestarting
            The producer sent an error whose code means it is stopping or busy: a lost
            connection, to be resumed from the same batch.
        """
        try:
            msg = wire.recv_message(self.sock, self.config.max_frame_bytes)
        except socket.timeout:
            raise TimeoutError(f"producer at {self.config.address} sent nothing for "
                               f"{self.config.read_timeout:g}s (readTimeout)") from None
        if msg is not None and msg["type"] == "error" and msg["code"] in RETRY_LATER_CODES:
            raise ProducerRestarting(f"producer at {self.config.address} is stopping: [{msg['code']}] "
                                     f"{msg['reason']}")
        return msg

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "ProducerConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@functools.lru_cache(maxsize=8)
def _security(tls_ca: str | None, token_file: str | None):
    """(TLS context, token) for these files, read once per process; clear errors for bad files."""
    from producer import transport

    context = transport.client_ssl_context(tls_ca) if tls_ca else None
    token = transport.read_token(token_file) if token_file else None
    return context, token


def _connect_once(config: ConnectConfig) -> ProducerConnection:
    from producer import transport

    context, token = _security(config.tls_ca, config.token_file)
    sock = transport.connect(config.host, config.port, ssl_context=context, token=token,
                             timeout=min(config.connect_timeout, 10.0))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A producer sends its hello at once; a silent one is as good as absent.
        sock.settimeout(min(config.connect_timeout, config.read_timeout))
        hello = check_hello(wire.recv_message(sock, config.max_frame_bytes), config.address)
        sock.settimeout(config.read_timeout)
    except BaseException:
        sock.close()
        raise
    return ProducerConnection(sock, hello, config)


# Failures worth waiting out: nobody listening yet, a producer restarting (reset, cut
# before its hello), or one too busy to answer in time.
_TRANSIENT = (ConnectionError, TimeoutError, socket.timeout, wire.TruncatedFrame)


def open_connection(config: ConnectConfig, *, logger: logging.Logger = log,
                    sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> ProducerConnection:
    """Connect and read the producer's hello, retrying with backoff while it is not up.

    Parameters
    ----------
    config : ConnectConfig
        Address, timeouts and backoff.
    logger : logging.Logger
        Gets one WARNING per failed attempt saying what is awaited and for how long.

    Returns
    -------
    ProducerConnection
        With ``hello`` validated (protocol version checked).

    Raises
    ------
    ProducerUnavailable
        If no hello was received within ``config.connect_timeout`` seconds.
    ProducerError, producer.wire.WireError
        If the producer answered with an error or a broken/incompatible hello: retrying
        would not help.
    """
    deadline = clock() + config.connect_timeout
    delays = backoff_delays(config.retry_initial, config.retry_max)
    attempt = 0
    while True:
        attempt += 1
        try:
            conn = _connect_once(config)
            if attempt > 1:
                logger.warning("connected to producer at %s after %d attempts", config.address, attempt)
            return conn
        except _TRANSIENT as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                raise ProducerUnavailable(
                    f"no producer at {config.address} after {attempt} attempts over "
                    f"{config.connect_timeout:g}s (connectTimeout); last error: {exc}") from None
            delay = min(next(delays), remaining)
            logger.warning("waiting for producer at %s (attempt %d: %s); retrying in %.1fs, "
                           "giving up in %.0fs", config.address, attempt, exc, delay, remaining)
            sleep(delay)


def fetch_hello(config: ConnectConfig, *, logger: logging.Logger = log) -> dict:
    """The producer's hello (connects with retries, reads it, hangs up)."""
    with open_connection(config, logger=logger) as conn:
        return conn.hello
