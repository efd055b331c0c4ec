"""Sharing the producer between connections: a byte budget and a fair decoding pool.

* :class:`ByteBudget` bounds the bytes of batch frames prepared and not yet handed to
  the sockets, over all connections; a connection waits (first come, first served)
  for room before a batch is built for it.
* :class:`FairExecutor` runs image-decoding tasks in a thread pool, taking them round
  robin from one queue per connection, so a consumer's batch never waits behind the
  hundreds of tasks queued for others, only behind one task per busy connection.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
from typing import Any, Callable, Hashable

#: Default of ``--max-buffered-bytes``.
DEFAULT_MAX_BUFFERED_BYTES = 256 * 2**20
#: Default of ``--max-connections``.
DEFAULT_MAX_CONNECTIONS = 64
#: Batches built ahead may only fill this share of the budget: the rest stays free for
#: the *next* batch of every connection, so prefetching never makes anybody wait.
PREFETCH_SHARE = 0.5


class ByteBudget:
    """A count of bytes shared by every connection, with first-come-first-served waiting.

    Only touched from the event loop thread.

    Parameters
    ----------
    limit : int
        Bytes that may be reserved at once.
    """

    def __init__(self, limit: int):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"the byte budget must be a positive integer, got {limit!r}")
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    def _check(self, n: int) -> None:
        if n > self.limit:
            raise ValueError(f"{n} bytes can never fit in a budget of {self.limit} bytes")

    def _take(self, n: int) -> None:
        self.used += n
        self.peak = max(self.peak, self.used)

    def try_acquire(self, n: int, share: float = 1.0) -> bool:
        """Reserve ``n`` bytes if they fit within ``share`` of the limit now and nobody waits; never blocks."""
        self._check(n)
        if self._waiters or self.used + n > self.limit * share:
            return False
        self._take(n)
        return True

    async def acquire(self, n: int) -> None:
        """Reserve ``n`` bytes, waiting behind earlier requests until they fit.

        Cancelling the wait leaves nothing reserved.
        """
        if self.try_acquire(n):
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (n, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted just as we were cancelled
                self.release(n)
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it already
                    self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, n: int) -> None:
        """Give back ``n`` reserved bytes and let waiters in."""
        self.used -= n
        if self.used < 0:
            raise RuntimeError("byte budget released more than was reserved")
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            n, waiter = self._waiters.popleft()
            if not waiter.done():
                self._take(n)
                waiter.set_result(None)

    @property
    def waiting(self) -> int:
        return len(self._waiters)


class FairExecutor:
    """A thread pool that takes tasks round robin from one queue per key (connection).

    At most ``workers`` tasks are in the pool at once; the rest wait in their key's
    queue, so a key with one task is served after at most one task of every other key.

    Parameters
    ----------
    workers : int
        Threads.
    thread_name_prefix : str
    initializer : callable, optional
        Run by each thread when it starts (e.g. to lower its priority).
    """

    def __init__(self, workers: int, thread_name_prefix: str = "chestct-decode",
                 initializer: Callable[[], None] | None = None):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix=thread_name_prefix,
                                                           initializer=initializer)
        self._workers = workers
        self._running = 0
        self._queues: collections.OrderedDict[Hashable, collections.deque] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def for_key(self, key: Hashable) -> "_KeyedSubmitter":
        """An object whose ``submit(fn, *args)`` queues under ``key`` (what ParallelBatch expects)."""
        return _KeyedSubmitter(self, key)

    def submit(self, key: Hashable, fn: Callable, *args: Any) -> concurrent.futures.Future:
        """Queue ``fn(*args)`` under ``key``; the returned future can be cancelled until it runs."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the decoding pool is shut down")
            self._queues.setdefault(key, collections.deque()).append((future, fn, args))
        self._dispatch()
        return future

    def queued(self) -> int:
        """Tasks waiting for a thread (for tests and stats)."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    def _dispatch(self) -> None:
        with self._lock:
            while self._running < self._workers and self._queues and not self._closed:
                key, queue = self._queues.popitem(last=False)
                item = queue.popleft()
                if queue:
                    self._queues[key] = queue  # back of the line
                if item[0].cancelled():
                    continue
                self._running += 1
                self._pool.submit(self._run, item)

    def _run(self, item) -> None:
        future, fn, args = item
        try:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # delivered to whoever waits on the future
                    future.set_exception(exc)
        finally:
            with self._lock:
                self._running -= 1
            self._dispatch()

    def shutdown(self) -> None:
        """Drop queued tasks and stop the threads (running tasks finish on their own)."""
        with self._lock:
            self._closed = True
            queues, self._queues = self._queues, collections.OrderedDict()
        for queue in queues.values():
            for future, _, _ in queue:
                future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _KeyedSubmitter:
    def __init__(self, executor: FairExecutor, key: Hashable):
        self._executor, self._key = executor, key

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        return self._executor.submit(self._key, fn, *args)
