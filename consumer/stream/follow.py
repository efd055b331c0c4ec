"""Follow a running streaming query: one line per micro-batch and a progress bar.

:func:`follow_query` polls the query's progress reports and hands each finished
micro-batch (a :class:`BatchProgress`) to a callback: the caller decides what happens
with it (the train command feeds its running model), so nothing here reaches back up.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("chestct.stream")


@dataclass
class BatchProgress:
    """One finished micro-batch as the driver sees it."""

    batch_id: int
    start_seq: int | None
    end_seq: int | None
    rows: int
    seconds: float
    rows_per_s: float

    def line(self) -> str:
        if self.end_seq is None or (self.start_seq is not None and self.end_seq <= self.start_seq):
            seqs = "none"
        else:
            # The first micro-batch of a new query reports no start offset.
            seqs = f"{'' if self.start_seq is None else self.start_seq}..{self.end_seq - 1}"
        return (f"micro-batch {self.batch_id}: producer batches {seqs}, {self.rows} rows in "
                f"{self.seconds:.1f}s ({self.rows_per_s:.1f} rows/s)")


def _seq(offset: Any) -> int | None:
    if offset is None:
        return None
    if isinstance(offset, str):
        offset = json.loads(offset)
    return int(offset["seq"]) if isinstance(offset, dict) and "seq" in offset else None


def batch_progress(progress: dict) -> BatchProgress:
    """Summarise one ``StreamingQueryProgress`` (as a dict)."""
    source = progress["sources"][0] if progress.get("sources") else {}
    seconds = progress.get("durationMs", {}).get("triggerExecution", 0) / 1000.0
    rows = int(progress.get("numInputRows", 0))
    return BatchProgress(batch_id=int(progress["batchId"]), start_seq=_seq(source.get("startOffset")),
                         end_seq=_seq(source.get("endOffset")), rows=rows, seconds=seconds,
                         rows_per_s=rows / seconds if seconds > 0 else 0.0)


def _as_dict(raw: Any) -> dict:
    return raw if isinstance(raw, dict) else json.loads(raw.json)


def new_reports(query, seen: set[int]) -> list[dict]:
    """The query's progress reports that may be new, oldest first (as dicts).

    ``recentProgress`` converts every retained report (up to
    ``spark.sql.streaming.numRecentProgressUpdates``, 100) over py4j, at each poll: on a
    long or endless stream that was most of the driver's idle work. The newest report
    alone (``lastProgress``) is enough when it is already seen (nothing new) or directly
    follows a seen micro-batch; only a gap (the first poll, several micro-batches between
    two polls) reads them all.
    """
    last = query.lastProgress
    if last is None:
        return []
    last = _as_dict(last)
    if last["batchId"] in seen:
        return []
    if last["batchId"] - 1 in seen:
        return [last]
    return [_as_dict(raw) for raw in query.recentProgress]


def follow_query(query, *, total_batches: int | None,
                 on_batch: Callable[[BatchProgress], None] | None = None,
                 progress_bar: bool = True, poll_seconds: float = 0.5,
                 emit: Callable[[str], None] | None = None,
                 log_batches: bool = True,
                 until: Callable[[], bool] | None = None) -> list[BatchProgress]:
    """Wait for a streaming query, logging each micro-batch and moving a progress bar.

    Parameters
    ----------
    query : pyspark.sql.streaming.StreamingQuery
    total_batches : int or None
        Producer batches in the stream (bar total); None for an endless stream.
    on_batch : callable, optional
        Called with each :class:`BatchProgress` after it is logged.
    emit : callable, optional
        Prints each micro-batch line (default: logged at INFO).
    log_batches : bool
        Whether to print a line per micro-batch at all (prediction prints its own).
    until : callable, optional
        Polled; when it returns True this returns, leaving the query running.

    Returns
    -------
    list of BatchProgress

    Raises
    ------
    pyspark.errors.StreamingQueryException
        If the query failed.
    """
    from tqdm import tqdm

    done: list[BatchProgress] = []
    seen: set[int] = set()
    bar = tqdm(total=total_batches, initial=0, unit="batch", desc="stream",
               disable=not progress_bar, dynamic_ncols=True)

    def drain() -> None:
        for progress in new_reports(query, seen):
            if progress["batchId"] in seen or not progress.get("sources"):
                continue
            seen.add(progress["batchId"])
            item = batch_progress(progress)
            if item.start_seq is None:
                # A new query's first report has no start offset: it began at the source's
                # initial offset, seq 0.
                item.start_seq = done[-1].end_seq if done else 0
            done.append(item)
            if bar.n == 0 and item.start_seq:
                bar.update(item.start_seq)
            if item.end_seq is not None:
                bar.update(max(0, item.end_seq - bar.n))
            if log_batches:
                (emit or log.info)(item.line())
            if on_batch is not None:
                on_batch(item)

    try:
        while query.isActive:
            query.awaitTermination(poll_seconds)
            drain()
            if until is not None and until():
                return done
        drain()
    except Exception as exc:
        from ..console import is_interrupt

        if is_interrupt(exc):  # py4j's error over a Ctrl-C is the Ctrl-C (console.is_interrupt)
            raise KeyboardInterrupt from exc
        raise
    finally:
        bar.close()
    error = query.exception()
    if error is not None:
        raise error
    return done


