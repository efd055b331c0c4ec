"""A normal consumer's latency with 200 idle subscribers connected, against an idle producer.

Two producers run in this process with the same stream and the default settings (except
``max_connections``): ``producer`` has no other client; ``producer-200-idle`` has 200
subscribers that subscribed to an endless stream and never read (their socket buffers are
full and they have stalled, so they hold no budget). One round = a fresh connection that
reads batches 0..3 and decodes them. Each round of one is preceded by a round of the other,
so both see the same background load; ``make bench`` prints ``median(200 idle) /
median(idle)`` (target <= 2). The producer process's RSS with the idle subscribers is
recorded as ``rss_mib`` (``rss_before_idle_mib`` before they connected).

Data: the real train split when ``CHESTCT_DATA`` is set, else a synthetic set.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest

from producer import imaging, synthetic, wire
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.stream import StreamSpec

GROUP = "producer fairness: 4 batches"
IDLE_CLIENTS = 200
BATCHES = 4
ROUNDS = 9


def _data(tmp_path_factory) -> Path:
    env = os.environ.get("CHESTCT_DATA")
    if env and (Path(env) / "train").is_dir():
        return Path(env)
    root = tmp_path_factory.mktemp("fairness-data")
    synthetic.generate(root, per_class=20, progress=False)
    return root


def _read_batches(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        wire.recv_message(sock)
        wire.send_message(sock, wire.subscribe(0, BATCHES))
        images = 0
        while (msg := wire.recv_message(sock))["type"] == "batch":
            images += wire.batch_pixels(msg).shape[0]
        assert msg["type"] == "end", msg
        return images


def _idle_subscriber(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    wire.send_message(sock, wire.subscribe(0))
    return sock


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    spec = StreamSpec.from_directory(_data(tmp_path_factory), "train", batch_size=8, endless=True,
                                     preprocessing=imaging.Preprocessing())
    config = dict(port=0, progress=False, max_connections=IDLE_CLIENTS + 16)
    with running_server(spec, ServerConfig(**config)) as quiet, \
            running_server(spec, ServerConfig(**config)) as loaded:
        rss_before = psutil.Process().memory_info().rss / 2**20
        idle = [_idle_subscriber(loaded.port) for _ in range(IDLE_CLIENTS)]
        try:
            deadline = time.monotonic() + 600
            while loaded.stats.stalled < IDLE_CLIENTS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {loaded.stats.stalled} of {IDLE_CLIENTS} idle clients stalled")
                time.sleep(0.2)
            yield {"producer": quiet, "producer-200-idle": loaded, "rss_before_mib": rss_before,
                   "rss_mib": psutil.Process().memory_info().rss / 2**20}
        finally:
            for s in idle:
                s.close()


@pytest.mark.parametrize("impl, other", [("producer", "producer-200-idle"), ("producer-200-idle", "producer")])
def test_normal_client_latency(benchmark, servers, impl, other):
    benchmark.group = GROUP
    benchmark.extra_info["impl"] = impl
    mine, theirs = servers[impl].port, servers[other].port
    images = benchmark.pedantic(_read_batches, args=(mine,), setup=lambda: (_read_batches(theirs), None)[1],
                                rounds=ROUNDS, iterations=1)
    assert images == BATCHES * 8
    server = servers[impl]
    benchmark.extra_info["budget_peak_mib"] = server.budget.peak / 2**20
    if impl != "producer":
        benchmark.extra_info["idle_clients"] = IDLE_CLIENTS
        benchmark.extra_info["rss_mib"] = servers["rss_mib"]
        benchmark.extra_info["rss_before_idle_mib"] = servers["rss_before_mib"]
        assert server.stats.connections_active >= IDLE_CLIENTS
