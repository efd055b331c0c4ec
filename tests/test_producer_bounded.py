"""A bounded producer: connection limit, global byte budget, fair decoding, stalled consumers."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from producer import budget, imaging, wire
from producer.running import running_server
from producer.server import ProducerServer
from producer.server_config import ServerConfig
from fake_producer import wait_until
from producer.batch import build_batch
from producer.stream import StreamSpec

IDLE_CLIENTS = 200


@pytest.fixture(scope="module")
def tiny_data(synthetic_dataset) -> Path:
    return synthetic_dataset(3)


def make_spec(root: Path, size=(64, 64), batch_size=4, **kw) -> StreamSpec:
    return StreamSpec.from_directory(root, "train", batch_size=batch_size, endless=kw.pop("endless", True),
                                     preprocessing=imaging.Preprocessing(image_size=size), **kw)


def config(**kw) -> ServerConfig:
    for key, value in dict(port=0, progress=False, workers=2).items():
        kw.setdefault(key, value)
    return ServerConfig(**kw)




def read_batches(port: int, n: int, from_seq: int = 0) -> list[bytes]:
    """Raw payloads of batches from_seq .. from_seq+n-1."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        assert wire.recv_message(sock)["type"] == "hello"
        wire.send_message(sock, wire.subscribe(from_seq, from_seq + n))
        out = []
        while True:
            msg = wire.recv_message(sock)
            if msg["type"] == "end":
                return out
            assert msg["type"] == "batch", msg
            out.append(wire.encode(msg))


def idle_subscriber(port: int) -> socket.socket:
    """Subscribes to everything and never reads (a tiny receive buffer fills at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    wire.send_message(sock, wire.subscribe(0))
    return sock


# ------------------------------------------------------------------ connection limit


def test_connections_past_the_limit_get_busy_and_the_rest_are_served(tiny_data):
    spec = make_spec(tiny_data, endless=False)
    with running_server(spec, config(max_connections=2)) as server:
        first, second = (socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(2))
        for s in (first, second):
            assert wire.recv_message(s)["type"] == "hello"
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as third:
            msg = wire.recv_message(third)
            assert msg["type"] == "error" and msg["code"] == "busy" and "2 connections" in msg["reason"]
            assert wire.recv_message(third) is None
        assert server.stats.errors_sent["busy"] == 1
        first.close()
        wait_until(lambda: server.stats.connections_active == 1, "the first connection to close")
        assert len(read_batches(server.port, 2)) == 2  # room again
        second.close()


# ------------------------------------------------------------------ the byte budget


def test_budget_refuses_a_batch_that_can_never_fit(tiny_data):
    spec = make_spec(tiny_data, size=(128, 128), batch_size=8)
    with pytest.raises(ValueError, match="max_buffered_bytes"):
        with running_server(spec, config(max_buffered_bytes=100_000)):
            pass


def reservation(spec: StreamSpec) -> int:
    """Bytes the server reserves per batch of ``spec``."""
    return ProducerServer(spec, config()).batch_reservation


def test_reservation_covers_the_largest_frame(tiny_data):
    spec = make_spec(tiny_data, endless=False)
    assert max(len(build_batch(spec, s).frame) for s in range(spec.total_batches)) <= reservation(spec)


def test_200_idle_subscribers_stay_within_the_budget_and_a_normal_client_completes(tiny_data):
    """Idle subscribers fill their socket buffers, stall, and give their batches back."""
    spec = make_spec(tiny_data, size=(128, 128), batch_size=4)  # ~88 KB frames: one fills a socket
    process = psutil.Process()
    small_buffers = dict(write_buffer_bytes=16 * 2**10, send_buffer_bytes=32 * 2**10)
    with running_server(spec, config(max_connections=IDLE_CLIENTS + 8, stall_timeout=0.3,
                                     max_buffered_bytes=40 * reservation(spec), **small_buffers)) as server:
        limit = server.budget.limit
        assert limit < IDLE_CLIENTS * server.batch_reservation  # without the budget they would exceed it
        rss_before = process.memory_info().rss
        idle = []
        try:
            for _ in range(IDLE_CLIENTS):
                idle.append(idle_subscriber(server.port))
            wait_until(lambda: server.stats.connections_active == IDLE_CLIENTS, "every idle client to connect")
            wait_until(lambda: server.stats.stalled >= IDLE_CLIENTS * 0.9, "the idle clients to stall", 120)
            frames = read_batches(server.port, 4)
            assert [wire.decode(f[4:])["seq"] for f in frames] == [0, 1, 2, 3]
            assert frames == [build_batch(spec, s).frame for s in range(4)]
            rss_peak = process.memory_info().rss
        finally:
            for s in idle:
                s.close()
        assert server.budget.peak <= limit
        assert server.stats.max_write_buffer <= 2 * server.config.write_buffer_bytes
        assert server.stats.stalls >= IDLE_CLIENTS * 0.9
        growth = rss_peak - rss_before
        print(f"\nRSS {rss_before / 2**20:.0f} MiB -> {rss_peak / 2**20:.0f} MiB with {IDLE_CLIENTS} idle "
              f"subscribers (budget {limit / 2**20:.1f} MiB, peak reserved {server.budget.peak / 2**20:.1f} MiB)")
        # budget + two chunks of socket buffer per connection + interpreter noise
        assert growth < limit + IDLE_CLIENTS * 2 * server.config.write_buffer_bytes + 64 * 2**20


def test_a_consumer_that_pauses_gets_byte_identical_rebuilt_frames(tiny_data):
    spec = make_spec(tiny_data, size=(128, 128), batch_size=8)  # ~175 KB frames, bigger than the socket buffers
    with running_server(spec, config(stall_timeout=0.2, write_buffer_bytes=16 * 2**10)) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            wire.recv_message(sock)
            wire.send_message(sock, wire.subscribe(0, 6))
            wait_until(lambda: server.stats.stalls >= 1, "the consumer to stall")
            # Everything prepared for it was given back; what is left is the read ahead's.
            assert server.budget.used == server.read_ahead.held * server.batch_reservation
            frames = []
            while (msg := wire.recv_message(sock))["type"] == "batch":
                frames.append(wire.encode(msg))
                time.sleep(0.3)  # stall again after every batch
        assert frames == [build_batch(spec, s).frame for s in range(6)]
        assert server.stats.rebuilds >= 1


# ------------------------------------------------------------------ the pieces


def test_byte_budget_is_first_come_first_served_and_cancellable():
    async def scenario():
        b = budget.ByteBudget(10)
        await b.acquire(6)
        order = []

        async def want(name, n):
            await b.acquire(n)
            order.append(name)

        big = asyncio.create_task(want("big", 8))
        await asyncio.sleep(0)
        small = asyncio.create_task(want("small", 2))
        await asyncio.sleep(0)
        assert b.waiting == 2 and not b.try_acquire(1)  # nobody jumps the queue
        gone = asyncio.create_task(want("gone", 1))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        b.release(6)
        await asyncio.gather(big, small)
        assert order == ["big", "small"] and b.used == 10 and b.peak == 10
        with pytest.raises(ValueError, match="never fit"):
            await b.acquire(11)
        b.release(10)
        assert b.used == 0 and b.waiting == 0

    asyncio.run(scenario())


def test_fair_executor_serves_a_lone_task_before_a_long_queue():
    pool = budget.FairExecutor(workers=1)
    gate = threading.Event()
    done: list[str] = []
    try:
        blocker = pool.submit("a", gate.wait, 30)
        many = [pool.submit("a", done.append, f"a{i}") for i in range(50)]
        lone = pool.submit("b", done.append, "b")
        assert pool.queued() == 51
        gate.set()
        lone.result(30)
        for f in many:
            f.result(30)
        assert blocker.result(1) is True
        assert done.index("b") <= 1  # after at most one task of the other connection
        cancelled = pool.submit("c", gate.wait, 0)
        assert cancelled.cancel() or cancelled.done()
    finally:
        pool.shutdown()


def test_prefetch_only_fills_its_share_of_the_budget():
    b = budget.ByteBudget(100)
    assert b.try_acquire(40, budget.PREFETCH_SHARE)
    assert not b.try_acquire(20, budget.PREFETCH_SHARE)  # 60 > 50: left for the next batches
    assert b.try_acquire(20)  # a next batch may use the rest
    b.release(60)
    assert b.used == 0
