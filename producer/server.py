"""The asyncio TCP server: one independent stream per connection.

Per connection: refuse it (``busy``) past ``max_connections``; with a token, require
an ``auth`` frame first; send ``hello``; wait for ``subscribe``; stream the requested
batches. Batches are built in a shared pool that serves connections round robin
(:class:`budget.FairExecutor`; OpenCV releases the GIL), and only with room in the
global byte budget (:class:`budget.ByteBudget`): the next batch of a connection waits
its turn for room, batches built ahead (``prefetch``) only take spare room. Frames are
written in chunks of ``write_buffer_bytes`` with a ``drain()`` after each, so a socket
buffer never holds more than about twice that. A consumer that stops reading for
``stall_timeout`` gives back everything prepared for it, and its current batch is
rebuilt (batches are deterministic) when it reads again; after ``send_timeout`` it is
dropped. A control task reads the consumer's frames concurrently (acks, or garbage that
ends the connection). Any failure of one connection ends that connection only, with an
``error`` frame when the socket still takes one, and a one-line log entry.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import socket
import time

from tqdm import tqdm

from . import budget, control, imaging, readahead, wire
from .batch import BuiltBatch, ParallelBatch, max_batch_frame_bytes
from .connection import EOF, Abort, Connection, NotReading, Outgoing
from .image_cache import ImageCache
from .server_config import ServerConfig, ServerStats
from .stream import StreamSpec

log = logging.getLogger(__name__)


class ProducerServer:
    """Serve one :class:`StreamSpec` to any number of consumers.

    Parameters
    ----------
    spec : StreamSpec
        The stream every connection gets (each from the seq it subscribes to).
    config : ServerConfig
        Network, pacing and limits.
    """

    def __init__(self, spec: StreamSpec, config: ServerConfig | None = None):
        self.spec = spec
        self.config = config or ServerConfig()
        self.stats = ServerStats()
        self._hello_frame = wire.encode(spec.hello(), self.config.max_frame_bytes)
        # Reserved per batch before it is built: the largest frame, skip reasons included.
        self.batch_reservation = min(
            max_batch_frame_bytes(spec) + spec.batch_size * (4 * wire.MAX_REASON_CHARS + 64),
            self.config.max_frame_bytes) + wire.HEADER.size
        if self.batch_reservation > self.config.max_buffered_bytes:
            raise ValueError(f"max_buffered_bytes {self.config.max_buffered_bytes} cannot hold one batch "
                             f"(up to {self.batch_reservation} bytes): raise it or lower the batch size")
        self.budget = budget.ByteBudget(self.config.max_buffered_bytes)
        #: Preprocessed images for replays and later epochs, shared by every connection.
        self.images = ImageCache(self.config.image_cache_bytes)
        self._executor: budget.FairExecutor | None = None
        self._read_ahead: readahead.ReadAhead | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[int, Connection] = {}
        self._handler_tasks: set[asyncio.Task] = set()
        self._numbers = itertools.count(1)
        self._bar: tqdm | None = None

    @property
    def read_ahead(self) -> readahead.ReadAhead:
        """The batches built ahead of every subscription (after :meth:`start`)."""
        if self._read_ahead is None:
            raise RuntimeError("server not started")
        return self._read_ahead

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Bind and start accepting connections.

        Raises
        ------
        OSError
            If the address cannot be bound (e.g. the port is in use).
        """
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(log_loop_exception)
        imaging.opencv_on_calling_threads()  # the parallelism is the pool's
        self._executor = budget.FairExecutor(self.config.workers)
        self._read_ahead = readahead.ReadAhead(self.spec, self.budget, self.batch_reservation, self.config.read_ahead,
                                               self.config.workers, self.config.max_frame_bytes, self.images)
        tls = {} if self.config.ssl_context is None else {
            "ssl": self.config.ssl_context, "ssl_handshake_timeout": self.config.subscribe_timeout}
        self._server = await asyncio.start_server(self._handle, self.config.host, self.config.port,
                                                  backlog=max(100, self.config.max_connections), **tls)
        self._bar = tqdm(desc=f"{self.spec.split} images sent", unit="img", dynamic_ncols=True,
                         mininterval=0.5, disable=not self.config.progress)

    async def close(self) -> None:
        """Stop accepting, end every connection with a ``shutdown`` error, free the port."""
        if self._server is not None:
            self._server.close()
        handlers = list(self._handler_tasks)
        for conn in list(self._connections.values()):
            conn.fail(wire.WireError("the producer is shutting down", code="shutdown"))
        if handlers:
            await asyncio.wait(handlers, timeout=10)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self._executor is not None:
            self._executor.shutdown()
        if self._read_ahead is not None:
            self._read_ahead.close()
        if self._bar is not None:
            self._bar.close()
        log.info("image cache: %s", self.images.describe())

    # ------------------------------------------------------------------ one connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = Connection(next(self._numbers), f"{peer[0]}:{peer[1]}" if peer else "?")
        self._connections[conn.number] = conn
        self._handler_tasks.add(asyncio.current_task())
        self.stats.connections_total += 1
        self.stats.connections_active += 1
        log.info("connection %s opened", conn)
        controls = None
        try:
            if self.stats.connections_active > self.config.max_connections:
                raise wire.WireError(f"the producer already serves {self.config.max_connections} connections; "
                                     "try again later", code="busy")
            # Bounded socket buffer: drain() waits above this, and frames go out in chunks of it.
            writer.transport.set_write_buffer_limits(high=self.config.write_buffer_bytes)
            sock = writer.get_extra_info("socket")
            if self.config.send_buffer_bytes is not None and sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer_bytes)
            if self.config.token is not None and not await control.authenticate(
                    reader, conn, self.config.token, self.config.control_max_frame_bytes,
                    self.config.subscribe_timeout):
                return
            controls = asyncio.create_task(control.read_control(reader, conn, self.config.control_max_frame_bytes))
            await self._converse(conn, writer)
        except wire.WireError as exc:
            await self._send_error(conn, writer, exc)
        except NotReading:
            log.warning("connection %s: consumer did not read for %.0fs; dropping it",
                        conn, self.config.send_timeout)
            writer.transport.abort()
        except Abort as exc:
            log.warning("connection %s: %s; closing it mid-frame", conn, exc)
            writer.transport.abort()
        except (ConnectionError, OSError) as exc:
            log.info("connection %s lost: %s", conn, exc)
        except Exception as exc:  # a bug: end this connection only, keep serving the others
            log.error("connection %s failed: %s: %s", conn, type(exc).__name__, exc)
            log.debug("details", exc_info=True)
            await self._send_error(conn, writer, wire.WireError(f"internal error: {exc}", code="internal"))
        finally:
            if controls is not None:
                controls.cancel()
            await self._close_writer(writer)
            self._connections.pop(conn.number, None)
            self._handler_tasks.discard(asyncio.current_task())
            self.stats.connections_active -= 1
            log.info("connection %s closed", conn)
            self._update_bar()

    async def _converse(self, conn: Connection, writer: asyncio.StreamWriter) -> None:
        await self._write(conn, writer, self._hello_frame)
        while True:
            try:
                msg = await conn.guard(conn.inbox.get(), self.config.subscribe_timeout)
            except asyncio.TimeoutError:
                raise wire.WireError(f"no subscribe within {self.config.subscribe_timeout:g}s",
                                     code="timeout") from None
            if msg is EOF:
                return
            conn.subscribes_queued -= 1
            await self._stream(conn, writer, msg)

    def _stream_range(self, msg: dict) -> tuple[int, int | None]:
        start, stop = msg["from_seq"], msg.get("to_seq")
        total = self.spec.total_batches
        if total is not None:
            if start > total:
                raise wire.WireError(f"from_seq {start} is past the end: the stream has {total} batches",
                                     code="bad_range")
            stop = total if stop is None else min(stop, total)
        return start, stop

    async def _stream(self, conn: Connection, writer: asyncio.StreamWriter, msg: dict) -> None:
        start, stop = self._stream_range(msg)
        log.info("connection %s subscribed to batches %d..%s", conn, start,
                 "end" if stop is None else stop - 1)
        self._read_ahead.subscribed(start, stop)
        pending: collections.deque[ParallelBatch] = collections.deque()  # each holds one reservation
        next_seq = start
        batches = images = skipped = 0
        skipped_files: dict[str, dict] = {}  # by id: an endless range meets a bad file once per epoch
        try:
            while True:
                next_seq = await self._prepare(conn, pending, next_seq, stop)
                if not pending:
                    break
                built = await self._built(conn, pending[0])
                outgoing = Outgoing(built.seq, built.frame)
                seq, sent_images, sent_skipped = built.seq, built.images, built.skipped
                del built  # on a stall the frame must be freeable: only ``outgoing`` and the job hold it
                await self._send_frame(conn, writer, pending, outgoing)
                # Timestamped per batch for latency measurements (benches/bench_pipeline.py).
                log.debug("connection %s: sent batch %d at %.6f", conn, seq, time.time())
                if pending:  # the job of this batch, unless a stall gave it back
                    pending.popleft()
                    self._release(1)
                next_seq = pending[-1].seq + 1 if pending else seq + 1
                batches += 1
                images += sent_images
                skipped += len(sent_skipped)
                for record in sent_skipped:
                    skipped_files.setdefault(record["id"], record)
                self.stats.batches_sent += 1
                self.stats.images_sent += sent_images
                self._update_bar(sent_images)
                if conn.subscribes_queued:
                    raise wire.WireError("subscribe while a subscription is active",
                                         code="unexpected_message")
                if self.config.sleep:
                    await conn.guard(asyncio.sleep(self.config.sleep))
        finally:
            self._drop(pending)
            self._read_ahead.range_ended()
        await self._write(conn, writer, wire.encode(
            wire.end(batches=batches, images=images, skipped=skipped, skipped_files=skipped_files.values()),
            self.config.max_frame_bytes))
        log.info("connection %s: sent %d batches, %d images, skipped %d files", conn, batches, images, skipped)

    async def _prepare(self, conn: Connection, pending: collections.deque, next_seq: int,
                       stop: int | None) -> int:
        """Start building batches up to ``prefetch`` ahead; returns the next seq to build.

        The first waits its turn for budget; the ones ahead take only spare budget (within
        ``budget.PREFETCH_SHARE`` of it), so a busy producer degrades to one batch per
        connection instead of starving anybody.
        """
        while len(pending) < self.config.prefetch and (stop is None or next_seq < stop):
            # Built (or started) ahead: its reservation comes with it.
            job = self._read_ahead.take(next_seq, self._executor.for_key(conn.number))
            if job is None:
                if pending:
                    if not self.budget.try_acquire(self.batch_reservation, budget.PREFETCH_SHARE):
                        break
                else:
                    await conn.guard(self.budget.acquire(self.batch_reservation))
                job = ParallelBatch(self.spec, next_seq, self._executor.for_key(conn.number),
                                    asyncio.get_running_loop(), self.config.max_frame_bytes, self.images)
            self._inflight(+1)
            pending.append(job)
            next_seq += 1
        return next_seq

    async def _built(self, conn: Connection, job: ParallelBatch) -> BuiltBatch:
        try:
            return await conn.guard(job.future)
        except wire.FrameTooLarge as exc:
            raise wire.FrameTooLarge(f"batch {job.seq}: {exc.message}; raise --max-frame-bytes "
                                     "or lower --batch-size", seq=job.seq) from None

    async def _send_frame(self, conn: Connection, writer: asyncio.StreamWriter,
                          pending: collections.deque, outgoing: Outgoing) -> None:
        """Write ``outgoing`` in chunks; on a stall give everything back, rebuild when it reads again.

        On return ``pending`` starts with the batch's job holding its reservation, or is
        empty when a stall during the last chunk gave everything back.
        """
        def on_stall() -> None:
            self._drop(pending)
            outgoing.data = None

        size, offset, chunk = len(outgoing.data), 0, self.config.write_buffer_bytes
        while offset < size:
            if outgoing.data is None:
                outgoing.data = await self._rebuild(conn, pending, outgoing.seq, size)
            # A copy: the socket buffer must not keep the whole frame alive through a memoryview.
            await self._write(conn, writer, outgoing.data[offset:offset + chunk], on_stall=on_stall)
            offset += chunk

    async def _rebuild(self, conn: Connection, pending: collections.deque, seq: int, size: int) -> bytes:
        await conn.guard(self.budget.acquire(self.batch_reservation))
        self._inflight(+1)
        job = ParallelBatch(self.spec, seq, self._executor.for_key(conn.number),
                            asyncio.get_running_loop(), self.config.max_frame_bytes, self.images)
        pending.append(job)
        self.stats.rebuilds += 1
        try:
            again = await self._built(conn, job)
        except wire.WireError as exc:  # e.g. a file changed meanwhile: part of the frame is already out
            raise Abort(f"batch {seq} could not be rebuilt after a stall: {exc}") from None
        if len(again.frame) != size:
            raise Abort(f"batch {seq} was rebuilt with {len(again.frame)} bytes instead of {size}")
        return again.frame

    # ------------------------------------------------------------------ helpers

    async def _write(self, conn: Connection, writer: asyncio.StreamWriter, data: bytes | memoryview,
                     on_stall=None) -> None:
        """Queue ``data`` and wait until the socket buffer is below its high-water mark.

        After ``stall_timeout`` seconds ``on_stall()`` is called (once) and the wait goes on
        up to ``send_timeout``.
        """
        if writer.transport.is_closing():  # the consumer hung up (uvloop raises on writes then)
            raise ConnectionResetError("the consumer closed the connection")
        writer.write(data)
        self.stats.bytes_sent += len(data)
        self.stats.max_write_buffer = max(self.stats.max_write_buffer,
                                          writer.transport.get_write_buffer_size())
        stall_after = min(self.config.stall_timeout, self.config.send_timeout / 2)
        first_wait = stall_after if on_stall is not None else self.config.send_timeout
        try:
            await conn.guard(writer.drain(), first_wait)
            return
        except asyncio.TimeoutError:
            if on_stall is None:
                raise NotReading from None
        self.stats.stalls += 1
        self.stats.stalled += 1
        try:
            on_stall()
            await conn.guard(writer.drain(), self.config.send_timeout - stall_after)
        except asyncio.TimeoutError:
            raise NotReading from None
        finally:
            self.stats.stalled -= 1

    def _drop(self, pending: collections.deque) -> None:
        """Cancel every job in ``pending`` and give their reservations back."""
        for job in pending:
            job.cancel()
        self._release(len(pending))
        pending.clear()

    def _release(self, jobs: int) -> None:
        if jobs:
            self._inflight(-jobs)
            self.budget.release(jobs * self.batch_reservation)

    async def _send_error(self, conn: Connection, writer: asyncio.StreamWriter, exc: wire.WireError) -> None:
        """Best effort: the peer may be gone or not reading; never wait long."""
        code = exc.code if exc.code in wire.ERROR_CODES else "error"
        (log.info if code == "shutdown" else log.warning)("connection %s: %s: %s", conn, code, exc.message)
        self.stats.errors_sent[code] += 1
        if writer.is_closing():
            return
        try:
            writer.write(wire.encode(wire.error(exc.message, code=code, seq=exc.seq), self.config.max_frame_bytes))
            await asyncio.wait_for(writer.drain(), 1.0)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            writer.transport.abort()

    async def _close_writer(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 2.0)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            writer.transport.abort()

    def _inflight(self, delta: int) -> None:
        self.stats.inflight += delta
        self.stats.max_inflight = max(self.stats.max_inflight, self.stats.inflight)

    def _update_bar(self, images: int = 0) -> None:
        if self._bar is not None:
            self._bar.update(images)
            self._bar.set_postfix(connections=self.stats.connections_active, refresh=False)


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """One log line instead of asyncio's traceback dump."""
    exc = context.get("exception")
    log.warning("event loop: %s%s", context.get("message", "error"), f": {exc!r}" if exc else "")
    log.debug("event loop context: %r", context)
