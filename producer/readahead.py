"""Batches built before anybody asks for them, on threads of the lowest OS priority.

A Spark consumer reads the stream in micro-batches: its tasks subscribe to a range, and
between two micro-batches (the driver commits, plans and starts the next job) they ask
for nothing, so the producer idles exactly when a core is free. The read ahead builds
the batches after the furthest one any subscription asked for, once no subscription is
being served, up to ``batches`` of them and within the spare part of the byte budget,
on threads of the lowest priority (``SCHED_IDLE``, else nice 19): they take only the CPU
that nobody else wants, so the decoding does not slow the consumer's work on the same
cores (at normal priority it did, docs/producer.md), nor the producer's own serving. A
subscription that reaches a batch takes it with its frame (the same bytes: batches are
deterministic); if it is unfinished, its remaining images move to the subscription's
normal-priority pool, so nobody waits on a starved thread.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

from . import budget
from .batch import ParallelBatch
from .image_cache import ImageCache
from .stream import StreamSpec

log = logging.getLogger(__name__)

#: Default of ``--read-ahead``: batches built ahead of the furthest one subscribed to (a
#: consumer's default micro-batch of ``predict`` is 8 producer batches).
DEFAULT_READ_AHEAD_BATCHES = 8
#: Nice value of the read-ahead threads (Linux sets it per thread).
READ_AHEAD_NICE = 19


def lower_thread_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux only: elsewhere nice is per process).

    ``SCHED_IDLE`` runs it only on a core nothing else wants; nice 19 where that policy is
    refused.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READ_AHEAD_NICE)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
    except OSError as exc:  # e.g. a sandbox without the syscall: still correct, just sooner
        log.debug("read-ahead thread keeps some of its priority: %s", exc)


class ReadAhead:
    """The batches built ahead, by seq; only touched from the event loop thread.

    Parameters
    ----------
    spec : StreamSpec
    byte_budget : budget.ByteBudget
        Each batch built ahead holds ``reservation`` bytes of it, taken only from the spare
        share (:data:`budget.PREFETCH_SHARE`); a subscription that takes the batch takes
        its reservation with it.
    reservation : int
    batches : int
        How many batches past the furthest one subscribed to; 0 turns the read ahead off.
    workers : int
        Low-priority decoding threads.
    max_frame_bytes : int
    cache : ImageCache, optional
        The server's preprocessed images (:mod:`producer.image_cache`).
    """

    def __init__(self, spec: StreamSpec, byte_budget: budget.ByteBudget, reservation: int, batches: int,
                 workers: int, max_frame_bytes: int, cache: ImageCache | None = None):
        if batches < 0:
            raise ValueError(f"read-ahead batches must be >= 0, got {batches}")
        self._spec = spec
        self._budget = byte_budget
        self._reservation = reservation
        self.batches = batches
        self._max_frame_bytes = max_frame_bytes
        self._cache = cache
        self._jobs: dict[int, ParallelBatch] = {}
        self._furthest = -1
        self._serving = 0
        self._executor = (budget.FairExecutor(workers, thread_name_prefix="chestct-readahead",
                                              initializer=lower_thread_priority) if batches else None)
        #: Batches taken by subscriptions, and dropped unused or failed (for logs and tests).
        self.taken = 0
        self.dropped = 0

    def take(self, seq: int, executor) -> ParallelBatch | None:
        """Batch ``seq`` with its reservation, or None (then build it as usual).

        Its images not started yet move to ``executor`` (the caller's normal-priority
        pool), so an unfinished batch is finished at once, not when idle CPU turns up.
        """
        job = self._jobs.pop(seq, None)
        if job is None:
            return None
        if job.future.done() and (job.future.cancelled() or job.future.exception() is not None):
            self._drop(job)  # e.g. a frame too large: built again, the error goes to the subscriber
            return None
        job.move_to(executor)
        self.taken += 1
        log.debug("batch %d: taken from the read-ahead (%s)", seq, "built" if job.future.done() else "unfinished")
        return job

    def subscribed(self, start: int, stop: int | None) -> None:
        """A subscription to ``start .. stop - 1`` (``stop`` None: endless) began.

        Only noted: nothing is built ahead while any subscription is being served
        (:meth:`range_ended`), so the read ahead never takes the GIL or a core from the
        producer's own sending and decoding.
        """
        self._furthest = max(self._furthest, start if stop is None else stop - 1)
        self._serving += 1

    def range_ended(self) -> None:
        """A subscription ended (sent, failed or dropped). Once none is served, build the
        batches after the furthest seq any subscription asked for, up to :attr:`batches` of
        them, not past the stream's end, while the spare budget has room (a consumer's next
        micro-batch subscribes to the range after its current ones)."""
        self._serving -= 1
        if self._serving:
            return
        if self._executor is None:
            return
        end = self._furthest + 1 + self.batches
        total = self._spec.total_batches
        if total is not None:
            end = min(end, total)
        for old in [s for s in self._jobs if s <= self._furthest - self.batches]:
            self._drop(self._jobs.pop(old))  # passed by every subscription: nobody will take it
        loop = asyncio.get_running_loop()
        for ahead in range(self._furthest + 1, end):
            if ahead in self._jobs:
                continue
            if not self._budget.try_acquire(self._reservation, budget.PREFETCH_SHARE):
                break
            self._jobs[ahead] = ParallelBatch(self._spec, ahead, self._executor.for_key("read-ahead"), loop,
                                              self._max_frame_bytes, self._cache)

    def _drop(self, job: ParallelBatch) -> None:
        job.cancel()
        self.dropped += 1
        self._budget.release(self._reservation)

    @property
    def held(self) -> int:
        """Batches built or being built ahead (each holds a reservation)."""
        return len(self._jobs)

    def close(self) -> None:
        """Drop every batch built ahead and stop the threads."""
        for job in self._jobs.values():
            self._drop(job)
        self._jobs.clear()
        if self._executor is not None:
            self._executor.shutdown()

