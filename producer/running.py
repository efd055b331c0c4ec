"""Running a :class:`~producer.server.ProducerServer`: until a signal, or on a background thread."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from typing import Iterator

from .server import ProducerServer
from .server_config import ServerConfig
from .stream import StreamSpec

log = logging.getLogger("producer.server")

try:  # uvloop is a speed-up, not a requirement
    import uvloop
except ImportError:  # pragma: no cover - depends on the platform
    uvloop = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the standard one."""
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def serve(spec: StreamSpec, config: ServerConfig) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status (0 after a clean shutdown).

    Raises
    ------
    OSError
        If the address cannot be bound.
    """
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    server = ProducerServer(spec, config)
    try:
        return loop.run_until_complete(_serve_until_signal(server))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def _serve_until_signal(server: ProducerServer) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    spec, config = server.spec, server.config
    log.info("serving %s: %d images, %s batches of %d, stream %s, on %s:%d (%s, %s)",
             spec.split, len(spec.files), "endless" if spec.endless else spec.total_batches,
             spec.batch_size, spec.stream_id[:12], config.host, server.port,
             "TLS" if config.ssl_context is not None else "no TLS", "token" if config.token is not None else "no token")
    try:
        await stop.wait()
        log.info("signal received: shutting down")
    finally:
        await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


@contextlib.contextmanager
def running_server(spec: StreamSpec, config: ServerConfig | None = None) -> Iterator[ProducerServer]:
    """Run a producer on a background thread (for tests and embedding); always stopped on exit.

    Examples
    --------
    >>> with running_server(spec, ServerConfig(port=0, progress=False)) as server:  # doctest: +SKIP
    ...     sock = socket.create_connection(("127.0.0.1", server.port))
    """
    config = config or ServerConfig(port=0, progress=False)
    server = ProducerServer(spec, config)
    loop = new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            await server.start()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        try:
            await stop.wait()
        finally:
            await server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="chestct-producer",
                              daemon=True)
    thread.start()
    started.wait()
    try:
        if failure:
            raise failure[0]
        yield server
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
