"""The producer's read ahead: batches built at the lowest priority for the next subscriptions."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import threading
from pathlib import Path

import pytest

from producer import budget, imaging, readahead
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.batch import ParallelBatch, build_batch
from producer.stream import StreamSpec
from fake_producer import wait_until
from test_producer_bounded import read_batches


@pytest.fixture(scope="module")
def data(synthetic_dataset) -> Path:
    return synthetic_dataset(4)


def make_spec(root: Path, endless: bool = False) -> StreamSpec:
    return StreamSpec.from_directory(root, "train", batch_size=2, endless=endless,
                                     preprocessing=imaging.Preprocessing(image_size=(48, 48)))


def config(**kw) -> ServerConfig:
    return ServerConfig(**{"port": 0, "progress": False, "workers": 2, **kw})


def test_the_next_range_is_built_ahead_and_served_byte_for_byte(data):
    """A consumer that reads range after range (Spark's micro-batches) gets the batches after
    its range built before it asks, and the same bytes as built on demand."""
    spec = make_spec(data)
    assert spec.total_batches >= 6
    with running_server(spec, config(read_ahead=3)) as server:
        first = read_batches(server.port, 3, from_seq=0)
        # Asking for 0..2 had 3..5 built ahead (not past the stream's end).
        wait_until(lambda: server.read_ahead.held == 3, "three batches built ahead")
        second = read_batches(server.port, 3, from_seq=3)
        assert server.read_ahead.taken == 3
    assert first + second == [build_batch(spec, s).frame for s in range(6)]
    assert server.budget.used == 0  # closing gave back what the read ahead held


def test_the_read_ahead_stops_at_the_end_of_a_finite_stream(data):
    spec = make_spec(data)
    with running_server(spec, config(read_ahead=50)) as server:
        read_batches(server.port, 1, from_seq=spec.total_batches - 2)
        wait_until(lambda: server.read_ahead.held == 1, "the last batch built ahead")
        assert server.read_ahead.held == 1  # only the stream's last batch was left


def test_read_ahead_zero_builds_nothing_ahead(data):
    def ahead_threads():
        return {t.ident for t in threading.enumerate() if t.name.startswith("chestct-readahead")}

    spec = make_spec(data, endless=True)
    before = ahead_threads()  # other tests' servers may still be stopping theirs
    with running_server(spec, config(read_ahead=0)) as server:
        frames = read_batches(server.port, 4)
        assert server.read_ahead.held == 0 and server.read_ahead.taken == 0
        assert not ahead_threads() - before
    assert len(frames) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_read_ahead_threads_run_at_the_lowest_priority(data):
    with running_server(make_spec(data, endless=True), config(read_ahead=2)) as server:
        read_batches(server.port, 1)
        wait_until(lambda: [t for t in threading.enumerate() if t.name.startswith("chestct-readahead")],
                   "a read-ahead thread")
        ahead = [t for t in threading.enumerate() if t.name.startswith("chestct-readahead")]
        decode = [t for t in threading.enumerate() if t.name.startswith("chestct-decode")]
        assert ahead and decode
        assert {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in ahead} == {readahead.READ_AHEAD_NICE}
        assert {os.sched_getscheduler(t.native_id) for t in ahead} == {os.SCHED_IDLE}
        assert {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in decode} == {os.getpriority(os.PRIO_PROCESS, 0)}
        assert server.read_ahead.held >= 1


def test_an_unfinished_batch_moves_to_the_askers_pool_with_the_same_bytes(data, monkeypatch):
    """A batch whose images wait behind, or run on, a starved read-ahead thread is finished
    by the pool it moves to: the running image starts again there, nobody waits for idle CPU."""
    from producer import batch

    spec = make_spec(data)
    blocker = threading.Event()
    running = threading.Event()
    load = batch.load_image

    def starved_load(file, spec_, cache=None):
        if threading.current_thread().name.startswith("test-starved"):
            running.set()
            blocker.wait(60)  # a nice-19 thread that gets no CPU
        return load(file, spec_, cache)

    monkeypatch.setattr(batch, "load_image", starved_load)

    async def scenario():
        loop = asyncio.get_running_loop()
        starved = budget.FairExecutor(1, thread_name_prefix="test-starved")
        normal = concurrent.futures.ThreadPoolExecutor(2)
        try:
            job = ParallelBatch(spec, 1, starved.for_key("ahead"), loop)  # image 0 runs, image 1 waits
            await loop.run_in_executor(None, running.wait, 30)
            job.move_to(normal)
            built = await asyncio.wait_for(job.future, 30)
            assert not blocker.is_set()  # finished while the starved thread still held image 0
        finally:
            blocker.set()
            starved.shutdown()
            normal.shutdown()
        return built

    assert asyncio.run(scenario()).frame == build_batch(spec, 1).frame


def test_taking_gives_the_reservation_with_the_batch_and_drops_failed_ones(data):
    spec = make_spec(data)

    async def scenario():
        byte_budget = budget.ByteBudget(100)
        ahead = readahead.ReadAhead(spec, byte_budget, 10, batches=2, workers=1, max_frame_bytes=2**20)
        normal = concurrent.futures.ThreadPoolExecutor(1)
        try:
            ahead.subscribed(0, stop=1)
            ahead.subscribed(0, stop=None)  # another consumer, from the start
            ahead.range_ended()
            assert ahead.held == 0  # nothing is built while a subscription is being served
            ahead.range_ended()
            assert ahead.held == 2 and byte_budget.used == 20
            job = ahead.take(1, normal)
            assert job is not None and job.seq == 1 and byte_budget.used == 20  # the caller holds it now
            await asyncio.wait_for(job.future, 30)
            assert ahead.take(1, normal) is None  # taken once
            # A frame limit no batch fits: the batch fails, and is dropped rather than handed over.
            tight = readahead.ReadAhead(spec, byte_budget, 10, batches=1, workers=1, max_frame_bytes=64)
            tight.subscribed(4, stop=None)
            tight.range_ended()
            failed = tight._jobs[5]
            await asyncio.wait([failed.future], timeout=30)
            assert tight.take(5, normal) is None and tight.dropped == 1
            tight.close()
            assert byte_budget.used == 20
        finally:
            ahead.close()
            normal.shutdown()
        return byte_budget.used

    assert asyncio.run(scenario()) == 10  # close gave back the one batch still held


def test_read_ahead_must_not_be_negative():
    with pytest.raises(ValueError, match="read_ahead"):
        ServerConfig(read_ahead=-1)
