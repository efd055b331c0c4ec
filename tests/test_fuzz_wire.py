"""Fuzzing the wire decoder and both frame readers: any bytes give a message or a WireError.

Never another exception, never a hang. The example budget comes from the environment so
CI can run a bounded, longer campaign (``scripts/fuzz-wire.sh``):

* ``CHESTCT_FUZZ_EXAMPLES`` examples per property (default 200, for the normal suite);
* the module prints ``fuzz-wire: N inputs in S s`` at the end (run pytest with ``-s``).
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from producer import wire

EXAMPLES = int(os.environ.get("CHESTCT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# How long one read may take before it counts as a hang (generous: the machine is shared).
HANG_SECONDS = 10.0

_counts = {"inputs": 0}
_started = time.perf_counter()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nfuzz-wire: {_counts['inputs']} inputs in {time.perf_counter() - _started:.1f} s "
          f"({EXAMPLES} examples per property)")


def _must_be_wire_error_or_message(fn):
    """Run ``fn``; a message (dict/None) or a WireError is fine, and the error must be sendable."""
    _counts["inputs"] += 1
    try:
        return fn()
    except wire.WireError as exc:
        # the producer answers with an error frame built from the exception: it must encode
        frame = wire.encode(wire.error(exc.message, code=exc.code if exc.code in wire.ERROR_CODES else "error"))
        assert wire.decode(frame[4:])["type"] == "error"
        return exc


# ------------------------------------------------------------------ inputs

_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**60, max_value=2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
            | st.sampled_from(["\ud800", "\x00", "uint8", "batch", ""]))
_JSON = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=5)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=5), max_leaves=20)

_VALID = [
    wire.hello(stream_id="s", split="train", classes=["a", "b"], image_shape=[2, 2, 1], batch_size=2,
               total_batches=1, total_images=2),
    wire.end(batches=1, images=2, skipped=1, skipped_files=[("a/x.png", "bad")]),
    wire.error("x", code="timeout", seq=3), wire.subscribe(1, 4), wire.ack(9), wire.auth("t" * 16),
    {"type": "batch", "seq": 0, "epoch": 0, "ids": ["a/1.png"], "labels": [1], "shape": [1, 2, 2, 1],
     "dtype": "uint8", "data": "AAECAw==", "crc32": 2344191115 % 2**32, "skipped": []},
]


@st.composite
def mutated_messages(draw) -> bytes:
    """A valid message with fields replaced, added or removed, as JSON text (with huge ints)."""
    msg = dict(draw(st.sampled_from(_VALID)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(msg)) | st.text(max_size=6)) if msg else draw(st.text(max_size=6))
        if draw(st.booleans()):
            msg[key] = draw(_JSON)
        else:
            msg.pop(key, None)
    text = json.dumps(msg, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # a number too long for Python's int parser
        text = text.replace("0", "9" * draw(st.integers(1, 6000)), 1)
    return text.encode("utf-8", "surrogatepass")


payloads = st.binary(max_size=512) | mutated_messages()


def _frames(parts: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


streams = (st.binary(max_size=1024)
           | st.lists(payloads, max_size=4).map(_frames)
           | st.tuples(st.lists(payloads, max_size=3).map(_frames), st.binary(max_size=16)).map(b"".join))


class _FakeSocket:
    """Just what ``wire.recv_message`` uses, served from memory in chunks of random sizes."""

    def __init__(self, data: bytes, chunk: int):
        self._data, self._chunk = io.BytesIO(data), chunk

    def recv_into(self, view, n):
        got = self._data.read(min(n, self._chunk))
        view[:len(got)] = got
        return len(got)


def _read_all_sync(data: bytes, limit: int, chunk: int) -> list:
    sock, out = _FakeSocket(data, chunk), []
    for _ in range(len(data) + 1):  # a reader that stops consuming would loop here, not hang
        msg = wire.recv_message(sock, limit)
        if msg is None:
            return out
        out.append(msg)
    raise AssertionError("the reader returned more messages than there are bytes")


async def _read_all_async(data: bytes, limit: int) -> list:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while (msg := await asyncio.wait_for(wire.read_message(reader, limit), HANG_SECONDS)) is not None:
        out.append(msg)
    return out


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# ------------------------------------------------------------------ properties


@FUZZ
@given(payload=payloads)
def test_decode_gives_a_message_or_a_wire_error(payload):
    result = _must_be_wire_error_or_message(lambda: wire.decode(payload))
    if isinstance(result, dict) and result["type"] == "batch":
        _must_be_wire_error_or_message(lambda: wire.batch_pixels(result))


@FUZZ
@given(data=streams, limit=st.integers(2, 2048), chunk=st.integers(1, 64))
def test_blocking_reader_gives_messages_or_a_wire_error(data, limit, chunk):
    _must_be_wire_error_or_message(lambda: _read_all_sync(data, limit, chunk))


@FUZZ
@given(data=streams, limit=st.integers(2, 2048))
def test_async_reader_gives_messages_or_a_wire_error(loop, data, limit):
    _must_be_wire_error_or_message(lambda: loop.run_until_complete(_read_all_async(data, limit)))


@settings(FUZZ, max_examples=max(20, EXAMPLES // 20))
@given(data=streams)
def test_blocking_reader_on_a_real_socket_never_hangs(data):
    """The same through a socketpair whose writer closes: EOF must end every read."""
    a, b = socket.socketpair()
    try:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        b.settimeout(HANG_SECONDS)  # a hang raises socket.timeout: not a WireError, so it fails
        _must_be_wire_error_or_message(lambda: [m for m in iter(lambda: wire.recv_message(b), None)])
    finally:
        a.close()
        b.close()


def test_the_fuzzer_can_tell_a_bad_exception():
    """The oracle itself: an exception other than WireError is not accepted."""
    with pytest.raises(ZeroDivisionError):
        _must_be_wire_error_or_message(lambda: 1 / 0)
    assert isinstance(_must_be_wire_error_or_message(lambda: wire.decode(b"{")), wire.MalformedFrame)
