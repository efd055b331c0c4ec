"""A small scriptable producer speaking the chestct wire protocol, for consumer tests.

It serves deterministic batches (pixels are a function of the seq) from a background
thread and can misbehave on purpose at chosen seqs:

* ``"bad_frame"``  — the batch frame's payload is not JSON
* ``"crc"``        — the batch's crc32 does not match its pixels
* ``"shape"``      — the images are not of the hello's image_shape
* ``"cut"``        — the connection is closed in the middle of the batch's frame
* ``"error"``      — an ``error`` message instead of the batch

A fault fires on every connection unless ``times`` limits it (``{3: ("cut", 1)}`` cuts
only the first time batch 3 is sent). ``stream_id_after`` makes the hello carry another
stream id from the n-th connection on (a producer restarted on other data). ``token``
makes it require an ``auth`` frame first (``unauthorized`` otherwise), ``ssl_context``
serves TLS (``producer.transport.server_ssl_context``), as the real producer does.

Run alone: ``python tests/fake_producer.py --port 5555 --images 40 --fault 3:crc``.

Also: helpers to run the real producer and the consumer CLI as subprocesses in their
own process groups, always stopped (:class:`Processes`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from producer import imaging, launch, transport, wire
from producer.launch import free_port, port_is_free, wait_for_port  # noqa: F401 (re-exported)

FAULTS = ("bad_frame", "crc", "shape", "cut", "error", "shutdown")


@dataclass
class FakeStream:
    """What the fake serves: ``total_images`` images in batches of ``batch_size``."""

    total_images: int = 22
    batch_size: int = 4
    image_shape: tuple[int, int, int] = (8, 8, 1)
    classes: tuple[str, ...] = ("adenocarcinoma", "large.cell.carcinoma", "normal",
                                "squamous.cell.carcinoma")
    stream_id: str = "fake-stream-0001"
    split: str = "train"
    endless: bool = False

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.total_images // self.batch_size)

    def hello(self, stream_id: str | None = None) -> dict:
        h, w, c = self.image_shape
        prep = imaging.Preprocessing(image_size=(h, w), color_mode="grayscale" if c == 1 else "rgb")
        return wire.hello(stream_id=stream_id or self.stream_id, split=self.split,
                          classes=self.classes, image_shape=self.image_shape,
                          batch_size=self.batch_size,
                          total_batches=None if self.endless else self.batches_per_epoch,
                          total_images=None if self.endless else self.total_images,
                          preprocessing=prep.describe(), limits=prep.limits())

    def images_of(self, seq: int) -> tuple[list[str], list[int], np.ndarray]:
        """Ids, labels and pixels of batch ``seq`` (deterministic)."""
        in_epoch = seq % self.batches_per_epoch
        first = in_epoch * self.batch_size
        n = min(self.batch_size, self.total_images - first)
        ids = [f"{self.classes[(first + i) % len(self.classes)]}/img{first + i:04d}.png"
               for i in range(n)]
        labels = [(first + i) % len(self.classes) for i in range(n)]
        rng = np.random.default_rng(in_epoch)
        pixels = rng.integers(0, 256, size=(n, *self.image_shape), dtype=np.uint8)
        return ids, labels, pixels

    def batch(self, seq: int) -> dict:
        ids, labels, pixels = self.images_of(seq)
        return wire.batch(seq=seq, epoch=seq // self.batches_per_epoch, ids=ids,
                          labels=labels, pixels=pixels)


@dataclass
class FakeProducer:
    """Threaded TCP server; use as a context manager (``with FakeProducer(...) as fp``)."""

    stream: FakeStream = field(default_factory=FakeStream)
    faults: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    stream_id_after: int | None = None
    delay: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    ssl_context: object | None = None

    def __post_init__(self) -> None:
        for seq, (kind, _) in self.faults.items():
            if kind not in FAULTS:
                raise ValueError(f"unknown fault {kind!r} at seq {seq}; known: {FAULTS}")
        self.subscriptions: list[tuple[int, int | None]] = []
        self.connections = 0
        self._fired: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> "FakeProducer":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(16)
        server.settimeout(0.2)
        self.port = server.getsockname()[1]
        self._server = server
        thread = threading.Thread(target=self._accept_loop, name="fake-producer", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> "FakeProducer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (socket.timeout, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _fault(self, seq: int) -> str | None:
        with self._lock:
            if seq not in self.faults:
                return None
            kind, times = self.faults[seq]
            fired = self._fired.get(seq, 0)
            if times is not None and fired >= times:
                return None
            self._fired[seq] = fired + 1
            return kind

    def _serve(self, client: socket.socket) -> None:
        if self.ssl_context is not None:
            try:
                client.settimeout(10)
                client = self.ssl_context.wrap_socket(client, server_side=True)
            except (OSError, ValueError):
                client.close()
                return
        with client:
            client.settimeout(10)
            if self.token is not None:
                try:
                    first = wire.recv_message(client, wire.CONTROL_MAX_FRAME_BYTES)
                except (OSError, wire.WireError):
                    return
                if not transport.token_matches(self.token, first):
                    with contextlib.suppress(OSError):
                        wire.send_message(client, wire.error("authentication failed", "unauthorized"))
                    return
            with self._lock:
                self.connections += 1
                number = self.connections
            other = self.stream_id_after is not None and number > self.stream_id_after
            try:
                wire.send_message(client, self.stream.hello(
                    self.stream.stream_id + "-other" if other else None))
                msg = wire.recv_message(client, wire.CONTROL_MAX_FRAME_BYTES)
                if msg is None or msg["type"] != "subscribe":
                    return
                start, stop = msg["from_seq"], msg.get("to_seq")
                with self._lock:
                    self.subscriptions.append((start, stop))
                total = None if self.stream.endless else self.stream.batches_per_epoch
                bounds = [x for x in (stop, total) if x is not None]
                last = min(bounds) if bounds else None
                seq = start
                while (last is None or seq < last) and not self._stop.is_set():
                    if self.delay:
                        time.sleep(self.delay)
                    if not self._send_batch(client, seq):
                        return
                    seq += 1
                if total is not None and seq >= total:
                    wire.send_message(client, wire.end(batches=total, images=self.stream.total_images,
                                                       skipped=0))
            except OSError:
                return

    def _send_batch(self, client: socket.socket, seq: int) -> bool:
        """Send batch ``seq`` (misbehaving if a fault says so); False = connection closed."""
        fault = self._fault(seq)
        msg = self.stream.batch(seq)
        if fault == "crc":
            msg["crc32"] = (msg["crc32"] + 1) % 2**32
        elif fault == "shape":
            ids, labels, pixels = self.stream.images_of(seq)
            h, w, c = self.stream.image_shape
            msg = wire.batch(seq=seq, epoch=msg["epoch"], ids=ids, labels=labels,
                             pixels=np.zeros((len(ids), h + 1, w, c), np.uint8))
        elif fault == "error":
            wire.send_message(client, wire.error(f"cannot make batch {seq}", "internal", seq=seq))
            return False
        elif fault == "shutdown":  # a graceful producer stop (SIGTERM) in the middle of a range
            wire.send_message(client, wire.error("the producer is stopping", "shutdown", seq=seq))
            return False
        if fault == "bad_frame":
            payload = b'{"type": "batch", "seq": ' + str(seq).encode() + b', oops'
            client.sendall(struct.pack(">I", len(payload)) + payload)
            return True
        frame = wire.encode(msg)
        if fault == "cut":
            client.sendall(frame[: len(frame) // 2])
            client.shutdown(socket.SHUT_RDWR)
            return False
        client.sendall(frame)
        return True


# ---------------------------------------------------------------- running real processes



def process_env(**extra: str) -> dict[str, str]:
    """Environment for producer/consumer subprocesses: this tree importable, Spark on loopback."""
    env = launch.tree_env()
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.update(extra)
    return env


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0,
               watch: Iterable[tuple[subprocess.Popen, Path]] = (), interval: float = 0.1) -> None:
    """Poll ``condition()`` until it holds.

    Fails naming ``what`` after ``timeout`` seconds, or as soon as a watched ``(process,
    log)`` ends, with the tail of its log.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        for proc, log in watch:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise AssertionError(f"waiting for {what}: a process ended ({proc.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until ``text`` is in the ``log`` file that ``proc`` writes (see :func:`wait_until`)."""
    wait_until(lambda: log.exists() and text in log.read_text(errors="replace"), f"{text!r} in {log.name}",
               timeout, watch=[(proc, log)], interval=0.3)


class Processes(launch.Processes):
    """:class:`producer.launch.Processes` whose children import this tree and log to a file."""

    def start(self, args: list[str], log: Path, **kw) -> subprocess.Popen:
        return super().start(args, log, env=kw.pop("env", process_env()), **kw)


def group_gone(proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    """Whether ``proc``'s whole process group (a CLI's JVM and Python workers) is gone within
    ``timeout`` seconds."""
    import os

    def gone() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_until(gone, "the process group to end", timeout, interval=0.2)
    except AssertionError:
        return False
    return True


def producer_args(data: Path, split: str, port: int, *extra: str, augment: int | None = 0) -> list[str]:
    """Command line of the real producer.

    ``augment``: ``--augment`` copies; 0 by default, so tests about other behaviour stream
    each picture once (and as fast as before); None leaves the flag out (the product's
    default, one copy per change on the train split: tests/test_defaults_real.py).
    """
    flag = [] if augment is None else ["--augment", str(augment)]
    return [sys.executable, "-m", "producer", "--directory", str(data), "--split", split,
            "--port", str(port), "--no-progress", *flag, *extra]


def consumer_args(command: str, *extra: str) -> list[str]:
    """Command line of the consumer CLI."""
    return [sys.executable, "-m", "consumer", command, "--no-progress", *extra]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fake chestct producer for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--images", type=int, default=22)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--fault", action="append", default=[], help="SEQ:KIND, e.g. 3:crc")
    ap.add_argument("--endless", action="store_true")
    args = ap.parse_args(argv)
    faults = {}
    for spec in args.fault:
        seq, kind = spec.split(":", 1)
        faults[int(seq)] = (kind, None)
    stream = FakeStream(total_images=args.images, batch_size=args.batch_size, endless=args.endless)
    with FakeProducer(stream=stream, faults=faults, port=args.port) as fp:
        print(json.dumps({"port": fp.port}), flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
