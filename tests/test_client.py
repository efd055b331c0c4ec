"""consumer.client: connecting with retries and timeouts, hello checks."""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from consumer.stream.client import (
    ConnectConfig,
    ProducerError,
    ProducerUnavailable,
    backoff_delays,
    fetch_hello,
    open_connection,
)
from fake_producer import FakeProducer, FakeStream
from producer import wire


def test_backoff_doubles_up_to_the_cap():
    delays = backoff_delays(0.5, 3.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize("kwargs, word", [
    ({"port": 0}, "port"), ({"port": 70000}, "port"), ({"connect_timeout": 0}, "connect_timeout"),
    ({"read_timeout": -1}, "read_timeout"), ({"max_frame_bytes": 10}, "max_frame_bytes"),
    ({"host": ""}, "host"),
])
def test_config_rejects_bad_values_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ConnectConfig(**kwargs)


def test_fetch_hello_reads_the_stream_description():
    with FakeProducer(stream=FakeStream(total_images=10, batch_size=4)) as fp:
        hello = fetch_hello(ConnectConfig(port=fp.port, connect_timeout=5))
    assert hello["stream_id"] == "fake-stream-0001"
    assert hello["total_batches"] == 3 and hello["image_shape"] == [8, 8, 1]


def test_waits_for_a_producer_that_starts_late_and_logs_while_waiting(port, caplog):
    fp = FakeProducer(port=port)
    starter = threading.Timer(1.5, fp.start)
    starter.start()
    try:
        with caplog.at_level(logging.WARNING, logger="chestct.client"):
            t0 = time.monotonic()
            hello = fetch_hello(ConnectConfig(port=port, connect_timeout=20, retry_initial=0.1,
                                              retry_max=0.5))
            waited = time.monotonic() - t0
    finally:
        starter.join()
        fp.stop()
    assert hello["type"] == "hello"
    assert waited >= 1.0
    waiting = [r.getMessage() for r in caplog.records if "waiting for producer" in r.getMessage()]
    assert waiting and f"127.0.0.1:{port}" in waiting[0]


def test_gives_up_after_the_connect_timeout_with_a_clear_error(port):
    t0 = time.monotonic()
    with pytest.raises(ProducerUnavailable, match=rf"no producer at 127.0.0.1:{port}.*connectTimeout"):
        fetch_hello(ConnectConfig(port=port, connect_timeout=1.0, retry_initial=0.1, retry_max=0.2))
    assert time.monotonic() - t0 < 10


def _one_shot_server(port: int, frames: list[bytes], hold: float = 0.0) -> threading.Thread:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)

    def serve():
        with server:
            server.settimeout(10)
            try:
                client, _ = server.accept()
            except socket.timeout:
                return
            with client:
                for frame in frames:
                    client.sendall(frame)
                time.sleep(hold)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_an_error_instead_of_hello_is_reported_not_retried(port):
    thread = _one_shot_server(port, [wire.encode(wire.error("dataset missing", "internal"))])
    with pytest.raises(ProducerError, match="refused the connection.*dataset missing"):
        fetch_hello(ConnectConfig(port=port, connect_timeout=5))
    thread.join()


def test_a_newer_protocol_is_refused(port):
    hello = FakeStream().hello()
    hello["protocol"] = wire.PROTOCOL_VERSION + 1
    thread = _one_shot_server(port, [wire.encode(hello)])
    with pytest.raises(wire.ProtocolVersionMismatch):
        fetch_hello(ConnectConfig(port=port, connect_timeout=5))
    thread.join()


def test_a_silent_server_times_out_instead_of_hanging(port):
    thread = _one_shot_server(port, [], hold=3.0)
    t0 = time.monotonic()
    with pytest.raises(ProducerUnavailable):
        fetch_hello(ConnectConfig(port=port, connect_timeout=1.0, read_timeout=1.0))
    assert time.monotonic() - t0 < 5
    thread.join()


def test_frame_limit_applies_to_batches():
    stream = FakeStream(total_images=4, batch_size=4, image_shape=(64, 64, 1))
    with FakeProducer(stream=stream) as fp:
        with open_connection(ConnectConfig(port=fp.port, max_frame_bytes=4096)) as conn:
            conn.subscribe(0, 1)
            with pytest.raises(wire.FrameTooLarge):
                conn.recv()


def test_a_producer_that_is_stopping_is_waited_for_not_a_failure():
    from producer import wire

    from consumer.stream.client import ProducerRestarting, check_hello

    stopping = wire.decode(wire.encode(wire.error("the producer is stopping", "shutdown"))[4:])
    with pytest.raises(ProducerRestarting, match="shutdown"):
        check_hello(stopping, "127.0.0.1:1")
    assert issubclass(ProducerRestarting, ConnectionError)  # retried like a refused connection
