"""The wire codec: round trips and every error class (no server involved)."""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from producer import wire


def _pixels(n=3, h=5, w=4, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def _batch(n=3, **kw):
    return wire.batch(seq=kw.get("seq", 7), epoch=kw.get("epoch", 1),
                      ids=[f"normal/{i}.png" for i in range(n)], labels=list(range(n)),
                      pixels=_pixels(n), skipped=kw.get("skipped", ()))


def _hello(**extra):
    return wire.hello(stream_id="abc123", split="train", classes=["a", "b"], image_shape=[5, 4, 1],
                      batch_size=3, total_batches=2, total_images=6, **extra)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _roundtrip(msg):
    frame = wire.encode(msg)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    return wire.decode(frame[4:])


# ------------------------------------------------------------------ round trips


def test_every_constructor_round_trips():
    messages = [
        _hello(preprocessing={"interpolation": "area"}, shuffle=True, seed=3),
        _batch(skipped=[("bad.png", "cannot decode")]),
        wire.end(batches=2, images=5, skipped=1, skipped_files=[{"id": "x.png", "reason": "bomb"}]),
        wire.error("boom", code="timeout", seq=4),
        wire.error("no seq"),
        wire.subscribe(),
        wire.subscribe(3, 9),
        wire.ack(12),
    ]
    for msg in messages:
        assert _roundtrip(msg) == msg


def test_hello_fields():
    msg = _hello(shuffle=False)
    assert msg["type"] == "hello" and msg["protocol"] == wire.PROTOCOL_VERSION
    assert msg["dtype"] == "uint8" and msg["shuffle"] is False
    wire.check_protocol(msg)
    with pytest.raises(wire.ProtocolVersionMismatch):
        wire.check_protocol(dict(msg, protocol=wire.PROTOCOL_VERSION + 1))
    with pytest.raises(wire.MalformedFrame, match="override"):
        _hello(protocol=99)


def test_endless_hello_has_null_total():
    msg = wire.hello(stream_id="s", split="train", classes=["a"], image_shape=[2, 2, 3], batch_size=1,
                     total_batches=None, total_images=None, endless=True)
    assert _roundtrip(msg)["total_batches"] is None


def test_batch_pixels_round_trip_and_layout():
    pixels = _pixels(4, 6, 7, 3, seed=5)
    msg = wire.batch(seq=0, epoch=0, ids=list("abcd"), labels=[0, 1, 2, 3], pixels=pixels)
    assert msg["shape"] == [4, 6, 7, 3]
    raw = base64.b64decode(msg["data"])
    assert raw == pixels.tobytes(order="C")
    assert msg["crc32"] == zlib.crc32(raw)
    back = wire.batch_pixels(_roundtrip(msg))
    np.testing.assert_array_equal(back, pixels)
    back[0, 0, 0, 0] ^= 1  # consumers may work in place
    assert back.flags.writeable


def test_batch_accepts_non_contiguous_pixels():
    pixels = _pixels(2, 8, 8, 1)[:, ::2]
    msg = wire.batch(seq=0, epoch=0, ids=["a", "b"], labels=[0, 0], pixels=pixels)
    np.testing.assert_array_equal(wire.batch_pixels(msg), pixels)


def test_empty_batch_round_trips():
    msg = wire.batch(seq=0, epoch=0, ids=[], labels=[], pixels=np.zeros((0, 4, 4, 1), np.uint8),
                     skipped=[("a.png", "corrupt")])
    assert wire.batch_pixels(_roundtrip(msg)).shape == (0, 4, 4, 1)


def test_encoding_is_deterministic_and_compact():
    assert wire.encode(_batch()) == wire.encode(_batch())
    payload = wire.encode(_batch())[4:]
    assert b": " not in payload and b", " not in payload


def test_batch_frames_are_plain_compact_json_and_re_encode_identically():
    msg = wire.batch(seq=3, epoch=0, ids=['normal/"quoted" \\ ä.png', "b"], labels=[1, 2],
                     pixels=_pixels(2), skipped=[("bad\n.png", 'reason with "quotes"')])
    frame = wire.encode(msg)
    payload = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert frame == struct.pack(">I", len(payload)) + payload
    assert wire.encode(wire.decode(frame[4:])) == frame  # a decoded message (plain str data) too
    assert wire.encode(dict(msg)) == frame


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]),
       seed=st.integers(0, 1000), skipped=st.booleans())
def test_batch_frame_is_the_encoded_batch_message_byte_for_byte(n, h, w, c, seed, skipped):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    fields = dict(seq=seed, epoch=1, ids=[f'normal/"{i}" ä.png' for i in range(n)], labels=[i % 4 for i in range(n)],
                  pixels=pixels, skipped=[("bad\n.png", 'reason "q"')] if skipped else [])
    assert wire.batch_frame(**fields) == wire.encode(wire.batch(**fields))
    limit = len(wire.encode(wire.batch(**fields))) - 4
    assert wire.batch_frame(**fields, max_frame_bytes=max(limit, wire.MIN_FRAME_LIMIT)) == wire.encode(wire.batch(**fields))
    if limit > wire.MIN_FRAME_LIMIT:
        with pytest.raises(wire.FrameTooLarge):
            wire.batch_frame(**fields, max_frame_bytes=limit - 1)


def test_non_ascii_ids_survive():
    msg = wire.batch(seq=0, epoch=0, ids=["normal/bild_ä.png"], labels=[0], pixels=_pixels(1))
    assert _roundtrip(msg)["ids"] == ["normal/bild_ä.png"]


def test_unknown_fields_are_kept_for_forward_compatibility():
    msg = wire.decode(json.dumps({"type": "ack", "seq": 1, "future": [1, 2]}).encode())
    assert msg["future"] == [1, 2]


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]),
       seq=st.integers(0, 2**40), seed=st.integers(0, 1000))
def test_batch_round_trip_property(n, h, w, c, seq, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    msg = wire.batch(seq=seq, epoch=0, ids=[str(i) for i in range(n)], labels=[0] * n, pixels=pixels)
    np.testing.assert_array_equal(wire.batch_pixels(_roundtrip(msg)), pixels)


# ------------------------------------------------------------------ error classes


def test_error_classes_and_codes():
    for cls, code in [(wire.FrameTooLarge, "frame_too_large"), (wire.MalformedFrame, "malformed_frame"),
                      (wire.TruncatedFrame, "truncated_frame"), (wire.ChecksumMismatch, "checksum_mismatch")]:
        exc = cls("explained")
        assert isinstance(exc, wire.WireError)
        assert exc.code == code and exc.code in wire.ERROR_CODES
        assert exc.message == "explained" and code in str(exc)
    assert wire.WireError("x", code="timeout").code == "timeout"


def test_encode_rejects_frames_over_the_limit():
    with pytest.raises(wire.FrameTooLarge, match="frame limit"):
        wire.encode(_batch(n=3), max_frame_bytes=64)
    assert wire.encode(wire.ack(1), max_frame_bytes=64)


@pytest.mark.parametrize("payload, match", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"hello"', "JSON object"),
    (b"{}", "no string 'type'"),
    (b'{"type": 5}', "no string 'type'"),
    (b'{"type": "launch"}', "unknown message type"),
    (b'{"type": "ack"}', "missing field 'seq'"),
    (b'{"type": "ack", "seq": "3"}', "must be an integer"),
    (b'{"type": "ack", "seq": true}', "must be an integer"),
    (b'{"type": "ack", "seq": -1}', ">= 0"),
    (b'{"type": "ack", "seq": NaN}', "NaN"),
    (b'{"type": "subscribe", "from_seq": 5, "to_seq": 2}', "to_seq"),
    (b'{"type": "subscribe", "from_seq": 1.5}', "integer"),
    (b'{"type": "error", "code": 1, "reason": "x"}', "must be a string"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_decode_rejects_malformed_payloads(payload, match):
    with pytest.raises(wire.MalformedFrame, match=match):
        wire.decode(payload)


def _corrupt(msg, **changes):
    bad = dict(msg)
    bad.update(changes)
    return json.dumps(bad).encode()


@pytest.mark.parametrize("changes, match", [
    ({"ids": "a"}, "must be a list"),
    ({"ids": [1, 2, 3]}, r"ids\[0\]"),
    ({"labels": [0, 1]}, "must agree"),
    ({"labels": [0, -1, 2]}, r"labels\[1\]"),
    ({"shape": [3, 5, 4]}, "4 items"),
    ({"dtype": "float32"}, "uint8"),
    ({"crc32": 2**32}, "crc32"),
    ({"data": None}, "string"),
    ({"skipped": [{"id": "x"}]}, "reason"),
])
def test_decode_rejects_bad_batch_fields(changes, match):
    with pytest.raises(wire.MalformedFrame, match=match):
        wire.decode(_corrupt(_batch(), **changes))


@pytest.mark.parametrize("changes, match", [
    ({"classes": []}, "must not be empty"),
    ({"classes": ["a", ""]}, "non-empty string"),
    ({"image_shape": [5, 4]}, "3 items"),
    ({"image_shape": [5, 4, 2]}, "channels"),
    ({"batch_size": 0}, ">= 1"),
    ({"total_batches": "many"}, "integer"),
    ({"protocol": "1"}, "integer"),
])
def test_decode_rejects_bad_hello_fields(changes, match):
    with pytest.raises(wire.MalformedFrame, match=match):
        wire.decode(_corrupt(_hello(), **changes))


def test_batch_pixels_detects_corruption():
    msg = _roundtrip(_batch())
    raw = bytearray(base64.b64decode(msg["data"]))
    raw[5] ^= 0xFF
    flipped = dict(msg, data=base64.b64encode(bytes(raw)).decode())
    with pytest.raises(wire.ChecksumMismatch, match="crc32"):
        wire.batch_pixels(flipped)
    short = dict(msg, data=base64.b64encode(bytes(raw[:-3])).decode())
    with pytest.raises(wire.ChecksumMismatch, match="shape"):
        wire.batch_pixels(short)
    with pytest.raises(wire.MalformedFrame, match="base64"):
        wire.batch_pixels(dict(msg, data="***not base64***"))
    # Excess padding (which the stdlib's strict mode lets through) and non-ASCII text.
    for bad in (msg["data"] + "=", msg["data"] + "==", msg["data"][:-4] + "é" * 4):
        with pytest.raises(wire.MalformedFrame, match="base64"):
            wire.batch_pixels(dict(msg, data=bad))


def test_batch_constructor_rejects_bad_pixels():
    with pytest.raises(wire.MalformedFrame, match="uint8"):
        wire.batch(seq=0, epoch=0, ids=["a"], labels=[0], pixels=np.zeros((1, 2, 2, 1), np.float32))
    with pytest.raises(wire.MalformedFrame, match=r"\(N, H, W, C\)"):
        wire.batch(seq=0, epoch=0, ids=["a"], labels=[0], pixels=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(wire.MalformedFrame, match="numpy"):
        wire.batch(seq=0, epoch=0, ids=["a"], labels=[0], pixels=[[1]])
    with pytest.raises(wire.MalformedFrame, match="agree"):
        wire.batch(seq=0, epoch=0, ids=["a"], labels=[0, 1], pixels=_pixels(1))
    with pytest.raises(wire.MalformedFrame, match="agree"):
        wire.batch_frame(seq=0, epoch=0, ids=["a"], labels=[0, 1], pixels=_pixels(1))
    with pytest.raises(wire.MalformedFrame, match="uint8"):
        wire.batch_frame(seq=0, epoch=0, ids=["a"], labels=[0], pixels=np.zeros((1, 2, 2, 1), np.float32))


def test_max_frame_bytes_argument_is_checked():
    with pytest.raises(ValueError, match=">= 2"):
        wire.encode(wire.ack(1), max_frame_bytes=0)
    with pytest.raises(TypeError):
        wire.encode(wire.ack(1), max_frame_bytes="big")


# ------------------------------------------------------------------ stream readers


async def _read_all(data: bytes, max_frame_bytes=wire.DEFAULT_MAX_FRAME_BYTES):
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while True:
        msg = await wire.read_message(reader, max_frame_bytes)
        if msg is None:
            return out
        out.append(msg)


def _recv_all(data: bytes, max_frame_bytes=wire.DEFAULT_MAX_FRAME_BYTES):
    a, b = socket.socketpair()
    try:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        out = []
        while True:
            msg = wire.recv_message(b, max_frame_bytes)
            if msg is None:
                return out
            out.append(msg)
    finally:
        a.close()
        b.close()


READERS = {
    "async": lambda data, limit=wire.DEFAULT_MAX_FRAME_BYTES: asyncio.run(_read_all(data, limit)),
    "blocking": _recv_all,
}


@pytest.mark.parametrize("kind", READERS)
def test_readers_return_messages_then_none(kind):
    messages = [_hello(), _batch(), wire.end(batches=1, images=3, skipped=0)]
    stream = b"".join(wire.encode(m) for m in messages)
    assert READERS[kind](stream) == messages
    assert READERS[kind](b"") == []


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_readers_raise_on_truncation(kind, cut):
    frame = wire.encode(_batch())
    with pytest.raises(wire.TruncatedFrame, match="end of stream"):
        READERS[kind](wire.encode(wire.ack(0)) + frame[:cut])


@pytest.mark.parametrize("kind", READERS)
def test_readers_enforce_the_limit_before_reading_the_payload(kind):
    # The header alone announces 1 GiB; the reader must refuse without waiting for it.
    with pytest.raises(wire.FrameTooLarge, match="over the 65536-byte limit"):
        READERS[kind](struct.pack(">I", 2**30), wire.CONTROL_MAX_FRAME_BYTES)
    with pytest.raises(wire.FrameTooLarge):
        READERS[kind](b"GET / HTTP/1.1\r\n\r\n", wire.CONTROL_MAX_FRAME_BYTES)


@pytest.mark.parametrize("kind", READERS)
def test_readers_raise_on_bad_payload(kind):
    with pytest.raises(wire.MalformedFrame):
        READERS[kind](_frame(b"\x00\x01garbage"))
    with pytest.raises(wire.MalformedFrame, match="unknown message type"):
        READERS[kind](_frame(b'{"type":"nope"}'))


def test_send_message_writes_one_frame():
    a, b = socket.socketpair()
    try:
        wire.send_message(a, wire.subscribe(2, 4))
        assert wire.recv_message(b) == {"type": "subscribe", "from_seq": 2, "to_seq": 4}
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------ integer bounds, auth, reasons


HUGE = "9" * 5000  # over Python's int-parsing digit limit (4 300): json.loads raises ValueError


@pytest.mark.parametrize("payload", [
    f'{{"type":"subscribe","from_seq":{HUGE}}}',
    f'{{"type":"subscribe","from_seq":0,"to_seq":{HUGE}}}',
    f'{{"type":"ack","seq":-{HUGE}}}',
    f'{{"type":"ack","seq":0,"extra":[{HUGE}]}}',
])
def test_an_integer_of_any_size_is_malformed_not_internal(payload):
    with pytest.raises(wire.MalformedFrame):
        wire.decode(payload.encode())


INT_FIELDS = [  # (message builder, field) for every integer field of every message type
    (lambda: _hello(), "protocol"), (lambda: _hello(), "batch_size"),
    (lambda: _hello(), "total_batches"), (lambda: _hello(), "total_images"),
    (lambda: _batch(), "seq"), (lambda: _batch(), "epoch"), (lambda: _batch(), "crc32"),
    (lambda: wire.end(batches=1, images=1, skipped=0), "batches"),
    (lambda: wire.end(batches=1, images=1, skipped=0), "images"),
    (lambda: wire.end(batches=1, images=1, skipped=0), "skipped"),
    (lambda: wire.error("x", seq=1), "seq"),
    (lambda: wire.subscribe(0, 5), "from_seq"), (lambda: wire.subscribe(0, 5), "to_seq"),
    (lambda: wire.ack(1), "seq"),
]


@pytest.mark.parametrize("build, key", INT_FIELDS)
@pytest.mark.parametrize("value", [wire.MAX_INT + 1, 2**64, -1, 10**30])
def test_every_integer_field_is_bounded(build, key, value):
    msg = dict(build(), **{key: value})
    if key == "from_seq":
        msg["to_seq"] = None
    payload = json.dumps(msg).encode()
    with pytest.raises(wire.MalformedFrame, match=key):
        wire.decode(payload)


@pytest.mark.parametrize("key, value", [("image_shape", [5, 4, 2**70]), ("shape", None), ("labels", None)])
def test_integer_lists_are_bounded(key, value):
    msg = _hello() if key == "image_shape" else _batch(n=1)
    if key == "shape":
        value = [1, 5, 4, 2**70]
    if key == "labels":
        value = [2**70]
    with pytest.raises(wire.MalformedFrame, match=key):
        wire.decode(json.dumps(dict(msg, **{key: value})).encode())


def test_the_largest_allowed_integer_round_trips():
    assert _roundtrip(wire.ack(wire.MAX_INT))["seq"] == wire.MAX_INT


def test_auth_message_round_trips_and_needs_a_token():
    msg = wire.auth("s3cret")
    assert msg == {"type": "auth", "token": "s3cret"} and _roundtrip(msg) == msg
    with pytest.raises(wire.MalformedFrame):
        wire.auth("")
    with pytest.raises(wire.MalformedFrame, match="token"):
        wire.decode(b'{"type":"auth","token":7}')


def test_new_error_codes_exist():
    for code in ("busy", "unauthorized", "file_changed"):
        assert code in wire.ERROR_CODES
    assert wire.FileChanged("x", seq=3).code == "file_changed"
    assert wire.PROTOCOL_VERSION == 2


def test_error_messages_about_peer_strings_can_always_be_sent_back():
    """A lone surrogate or a control character from the peer must not break the error frame."""
    for payload in (b'{"type":"\\ud800"}', b'{"type":"ack","seq":"\\udfff\\u0000"}',
                    b'{"type":"batch","seq":0,"epoch":0,"shape":[0,1,1,1],"ids":[],"labels":[],'
                    b'"dtype":"\\ud800","data":"","crc32":0,"skipped":[]}'):
        with pytest.raises(wire.MalformedFrame) as info:
            wire.decode(payload)
        assert wire.decode(wire.encode(wire.error(info.value.message, code=info.value.code))[4:])


def test_reasons_are_cut_and_made_valid_utf8():
    long = wire.error("x" * 10_000)
    assert len(long["reason"]) == wire.MAX_REASON_CHARS and long["reason"].endswith("...")
    rec = wire.end(batches=0, images=0, skipped=1, skipped_files=[("a.png", "bad \ud800 byte")])
    assert wire.decode(wire.encode(rec)[4:])["skipped_files"][0]["reason"] == "bad \\ud800 byte"
