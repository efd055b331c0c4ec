"""The producer server against live sockets: conversation, determinism, bad input, backpressure."""
from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import dataset, imaging, reading, synthetic, wire
from producer.running import running_server
from producer.server_config import ServerConfig
from fake_producer import wait_until
from producer.batch import ParallelBatch, build_batch
from producer.stream import StreamSpec

CLIENT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def tiny_data(synthetic_dataset) -> Path:
    """12 train images (3 per class), 4 valid, 8 test, mixed formats."""
    return synthetic_dataset(3)


def make_spec(root: Path, split: str = "train", batch_size: int = 5, size=(24, 20), **kw) -> StreamSpec:
    prep = imaging.Preprocessing(image_size=size, color_mode=kw.pop("color_mode", "grayscale"),
                                 crop="none", denoise="none")  # pixels compared with a plain resize
    return StreamSpec.from_directory(root, split, batch_size=batch_size, preprocessing=prep, **kw)


def config(**kw) -> ServerConfig:
    kw.setdefault("port", 0)
    kw.setdefault("progress", False)
    kw.setdefault("workers", 2)
    return ServerConfig(**kw)


class Client:
    """A blocking test consumer that can also read raw frames."""

    def __init__(self, port: int, rcvbuf: int | None = None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(CLIENT_TIMEOUT)
        self.sock.connect(("127.0.0.1", port))

    def recv(self) -> dict | None:
        return wire.recv_message(self.sock)

    def recv_raw(self) -> bytes:
        header = self._exactly(4)
        return header + self._exactly(struct.unpack(">I", header)[0])

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def send(self, msg: dict) -> None:
        wire.send_message(self.sock, msg)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_by_server(self) -> bool:
        """True when the server closed the connection (EOF or reset) after what was read."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def full_run(port: int, from_seq: int = 0, to_seq: int | None = None) -> tuple[dict, list[bytes], dict]:
    """hello, raw batch frames, end."""
    with Client(port) as c:
        hello = c.recv()
        c.send(wire.subscribe(from_seq, to_seq))
        frames = []
        while True:
            raw = c.recv_raw()
            msg = wire.decode(raw[4:])
            if msg["type"] == "end":
                return hello, frames, msg
            assert msg["type"] == "batch", msg
            frames.append(raw)


def decoded(frames: list[bytes]) -> list[dict]:
    return [wire.decode(f[4:]) for f in frames]


def assert_server_still_serves(port: int, spec: StreamSpec) -> None:
    hello, frames, end = full_run(port)
    assert hello["stream_id"] == spec.stream_id
    assert len(frames) == spec.total_batches and end["batches"] == spec.total_batches


# ------------------------------------------------------------------ conversation and content


def test_hello_then_every_batch_then_end(tiny_data):
    spec = make_spec(tiny_data)
    with running_server(spec, config()) as server:
        hello, frames, end = full_run(server.port)
    assert hello == spec.hello()
    assert hello["total_batches"] == 3 and hello["total_images"] == 12  # 12 images in batches of 5
    batches = decoded(frames)
    assert [b["seq"] for b in batches] == [0, 1, 2]
    assert [len(b["ids"]) for b in batches] == [5, 5, 2]
    assert end == {"type": "end", "batches": 3, "images": 12, "skipped": 0, "skipped_files": []}
    by_id = {f.id: f for f in spec.files}
    seen = [i for b in batches for i in b["ids"]]
    assert sorted(seen) == sorted(by_id)  # every file exactly once
    for b in batches:
        pixels = wire.batch_pixels(b)
        assert pixels.shape == (len(b["ids"]), 24, 20, 1)
        for image, file_id, label in zip(pixels, b["ids"], b["labels"]):
            # the pixels are the file's own, decoded independently here with cv2
            expected = cv2.resize(cv2.imread(str(by_id[file_id].path), cv2.IMREAD_GRAYSCALE), (20, 24),
                                  interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(image[:, :, 0], expected)
            assert hello["classes"][label] == dataset.class_name(file_id.split("/")[0])


def test_rgb_stream_has_three_channels_in_rgb_order(tiny_data, tmp_path):
    root = tmp_path / "rgb"
    (root / "train" / "red_x").mkdir(parents=True)
    img = np.zeros((30, 30, 3), np.uint8)
    img[..., 2] = 255  # BGR on disk: pure red
    cv2.imwrite(str(root / "train" / "red_x" / "a.png"), img)
    spec = make_spec(root, batch_size=1, size=(8, 8), color_mode="rgb")
    with running_server(spec, config()) as server:
        hello, frames, _ = full_run(server.port)
    assert hello["image_shape"] == [8, 8, 3]
    pixels = wire.batch_pixels(decoded(frames)[0])
    assert (pixels[..., 0] == 255).all() and (pixels[..., 1:] == 0).all()


def test_subscribe_from_later_seq_is_byte_identical(tiny_data):
    spec = make_spec(tiny_data, batch_size=2)  # 6 batches
    with running_server(spec, config()) as server:
        _, full, _ = full_run(server.port)
        _, tail, end_tail = full_run(server.port, from_seq=4)
        _, middle, end_middle = full_run(server.port, from_seq=1, to_seq=3)
        _, beyond, end_beyond = full_run(server.port, from_seq=5, to_seq=99)  # clamped to the end
        _, empty, end_empty = full_run(server.port, from_seq=6)
    assert len(full) == 6
    assert tail == full[4:] and middle == full[1:3] and beyond == full[5:]
    assert end_tail["batches"] == 2 and end_middle["batches"] == 2 and end_beyond["batches"] == 1
    assert empty == [] and end_empty["batches"] == 0 and end_empty["images"] == 0
    assert end_tail["images"] == sum(len(b["ids"]) for b in decoded(tail))


def test_replay_on_a_restarted_server_is_byte_identical(tiny_data):
    spec = make_spec(tiny_data, batch_size=4, seed=7)
    with running_server(spec, config()) as server:
        hello_a, frames_a, _ = full_run(server.port)
    again = make_spec(tiny_data, batch_size=4, seed=7)
    with running_server(again, config(prefetch=1, workers=1)) as server:
        hello_b, frames_b, _ = full_run(server.port, from_seq=1)
    assert hello_a["stream_id"] == hello_b["stream_id"]
    assert frames_b == frames_a[1:]


def test_stream_id_covers_files_and_settings(tiny_data, tmp_path):
    base = make_spec(tiny_data)
    assert make_spec(tiny_data).stream_id == base.stream_id
    for other in (make_spec(tiny_data, seed=1), make_spec(tiny_data, batch_size=4),
                  make_spec(tiny_data, shuffle=False), make_spec(tiny_data, size=(24, 24)),
                  make_spec(tiny_data, color_mode="rgb"), make_spec(tiny_data, split="test")):
        assert other.stream_id != base.stream_id
    # endless does not change any batch, so it keeps the id
    assert make_spec(tiny_data, endless=True).stream_id == base.stream_id
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data, copy)
    assert make_spec(copy).stream_id == base.stream_id  # the same content elsewhere is the same stream
    touched = make_spec(copy).files[0].path
    os.utime(touched, ns=(1, 1))
    assert make_spec(copy).stream_id == base.stream_id  # a touch changes no byte
    data = bytearray(touched.read_bytes())
    data[-1] ^= 1  # same size, one bit of other content
    touched.write_bytes(bytes(data))
    assert make_spec(copy).stream_id != base.stream_id
    # the limits decide which files are skipped, so they are part of the identity too
    prep = imaging.Preprocessing(image_size=(24, 20), max_image_pixels=10)
    assert StreamSpec.from_directory(tiny_data, "train", batch_size=5, preprocessing=prep).stream_id != base.stream_id


def test_shuffle_order_is_a_seeded_permutation(tiny_data):
    plain = make_spec(tiny_data, shuffle=False, batch_size=12)
    assert plain.plan(0)[1] == list(plain.files)  # sorted by id
    shuffled = make_spec(tiny_data, seed=3, batch_size=12)
    order = [f.id for f in shuffled.plan(0)[1]]
    expected = [plain.files[i].id for i in np.random.default_rng((3, 0)).permutation(12)]
    assert order == expected


def test_endless_stream_counts_seqs_across_epochs(tiny_data):
    spec = make_spec(tiny_data, batch_size=5, endless=True, seed=11)
    finite = make_spec(tiny_data, batch_size=5, seed=11)
    with running_server(spec, config()) as server, Client(server.port) as c:
        hello = c.recv()
        assert hello["total_batches"] is None and hello["total_images"] is None and hello["endless"]
        assert hello["batches_per_epoch"] == 3
        c.send(wire.subscribe(0))
        raw = [c.recv_raw() for _ in range(9)]  # three epochs
    batches = decoded(raw)
    assert [b["seq"] for b in batches] == list(range(9))
    assert [b["epoch"] for b in batches] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    epochs = [[i for b in batches[e * 3:(e + 1) * 3] for i in b["ids"]] for e in range(3)]
    for ids in epochs:
        assert sorted(ids) == sorted(f.id for f in spec.files)
    assert epochs[0] != epochs[1] != epochs[2]  # a new permutation per epoch
    # batch k of the endless stream is batch k of the finite one
    assert raw[1] == build_batch(finite, 1).frame


def test_endless_subscribe_far_ahead_and_bounded_range(tiny_data):
    spec = make_spec(tiny_data, batch_size=5, endless=True)
    with running_server(spec, config()) as server:
        _, frames, end = full_run(server.port, from_seq=300, to_seq=302)
    assert [b["seq"] for b in decoded(frames)] == [300, 301]
    assert [b["epoch"] for b in decoded(frames)] == [100, 100]
    assert end["batches"] == 2 and frames[0] == build_batch(spec, 300).frame


def test_several_consumers_at_once_get_whole_streams(tiny_data):
    spec = make_spec(tiny_data, batch_size=2)
    results: list = [None] * 4
    with running_server(spec, config(sleep=0.01)) as server:
        def consume(i):
            results[i] = full_run(server.port, from_seq=i)
        threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert server.stats.connections_total == 4
    reference = results[0][1]
    for i, (_, frames, end) in enumerate(results):
        assert frames == reference[i:] and end["batches"] == 6 - i


def test_consumer_may_ack_and_subscribe_again_on_one_connection(tiny_data):
    spec = make_spec(tiny_data, batch_size=4)
    with running_server(spec, config()) as server, Client(server.port) as c:
        c.recv()
        c.send(wire.subscribe(0, 2))
        first = [c.recv() for _ in range(3)]
        for b in first[:2]:
            c.send(wire.ack(b["seq"]))
        assert [m["type"] for m in first] == ["batch", "batch", "end"]
        c.send(wire.subscribe(2))
        second = [c.recv() for _ in range(2)]
        assert [m["type"] for m in second] == ["batch", "end"] and second[0]["seq"] == 2
        c.sock.shutdown(socket.SHUT_WR)
        assert c.closed_by_server()
        assert server.stats.errors_sent == {}


def test_half_closed_consumer_still_gets_its_stream(tiny_data):
    spec = make_spec(tiny_data, batch_size=4)
    with running_server(spec, config()) as server, Client(server.port) as c:
        c.recv()
        c.send(wire.subscribe(0))
        c.sock.shutdown(socket.SHUT_WR)  # nothing more to say, but still reading
        messages = [c.recv() for _ in range(4)]
        assert [m["type"] for m in messages] == ["batch"] * 3 + ["end"]
        assert c.closed_by_server()


def test_a_slow_file_holds_up_only_its_own_stream(tiny_data, monkeypatch):
    """While one file's decoding hangs, another consumer still gets its whole range."""
    spec = make_spec(tiny_data, batch_size=2, shuffle=False)  # 6 batches
    slow = spec.plan(0)[1][0].path
    release = threading.Event()
    real_read = reading.read_image

    def read_image(file, root, prep):
        if file.path == slow:
            release.wait(60)
        return real_read(file, root, prep)

    monkeypatch.setattr(reading, "read_image", read_image)
    with running_server(spec, config(workers=2, prefetch=1)) as server, Client(server.port) as stuck:
        stuck.recv()
        stuck.send(wire.subscribe(0, 1))  # batch 0 holds the slow file
        wait_until(lambda: server.stats.inflight == 1, "batch 0 to be building")
        try:
            _, frames, end = full_run(server.port, from_seq=1)  # batches 1..5
            assert len(frames) == 5 and end["images"] == 10
            assert not release.is_set() and server.stats.batches_sent == 5
        finally:
            release.set()
        assert stuck.recv()["seq"] == 0 and stuck.recv()["type"] == "end"


def test_consumer_leaving_mid_stream_is_routine(tiny_data, caplog):
    """A consumer that has read enough and hangs up is no error: no error frame, no warning."""
    spec = make_spec(tiny_data, batch_size=2, endless=True)
    with caplog.at_level(logging.INFO, logger="producer"), running_server(spec, config()) as server:
        for _ in range(3):
            with Client(server.port) as c:
                c.recv()
                c.send(wire.subscribe(0))
                assert [c.recv()["seq"] for _ in range(2)] == [0, 1]
        wait_until(lambda: server.stats.connections_active == 0, "the connections to close")
        assert server.stats.errors_sent == {} and server.stats.inflight == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------ corrupt files


def _corrupt_dataset(root: Path, source: Path) -> dict[str, str]:
    shutil.copytree(source, root)
    folder = root / "train" / synthetic.CLASS_FOLDERS["normal"]
    good = next(folder.glob("*.png")).read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "random.png").write_bytes(np.random.default_rng(1).bytes(3000))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    (folder / "bomb.png").write_bytes(synthetic_png_header(ihdr) + b"\x00" * 200)
    (folder / "text.jpg").write_bytes(b"hello, I am not a JPEG")
    return {"normal/truncated.png": "cannot decode", "normal/random.png": "not a PNG or JPEG",
            "normal/bomb.png": "decompression bomb", "normal/text.jpg": "not a PNG or JPEG"}


def synthetic_png_header(ihdr: bytes) -> bytes:
    import zlib
    return (imaging.PNG_SIGNATURE + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_corrupt_files_are_skipped_and_counted(tiny_data, tmp_path, caplog):
    root = tmp_path / "corrupt"
    expected = _corrupt_dataset(root, tiny_data)
    spec = make_spec(root, batch_size=4, shuffle=False)
    expected = {next(f.id for f in spec.files if f.id.endswith(k.split("/")[1])): v for k, v in expected.items()}
    with caplog.at_level(logging.WARNING), running_server(spec, config()) as server:
        hello, frames, end = full_run(server.port)
    assert hello["total_images"] == 16
    batches = decoded(frames)
    assert len(batches) == 4  # planned slots stay, seqs stay pure
    reasons = {s["id"]: s["reason"] for b in batches for s in b["skipped"]}
    assert set(reasons) == set(expected)
    for file_id, fragment in expected.items():
        assert fragment in reasons[file_id], reasons[file_id]
    assert end["images"] == 12 and end["skipped"] == 4
    assert {s["id"] for s in end["skipped_files"]} == set(expected)
    assert sum(len(b["ids"]) for b in batches) == 12
    assert not set(expected) & {i for b in batches for i in b["ids"]}
    for b in batches:  # the skipped files are left out; the rest keep their labels and pixels
        assert wire.batch_pixels(b).shape[0] == len(b["ids"]) == len(b["labels"])
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("truncated.png", "random.png", "bomb.png", "text.jpg"):
        assert name in warned
    assert not any(r.exc_info for r in caplog.records)


def test_endless_range_lists_each_skipped_file_once(tiny_data, tmp_path):
    root = tmp_path / "corrupt"
    _corrupt_dataset(root, tiny_data)
    spec = make_spec(root, batch_size=4, endless=True)
    with running_server(spec, config()) as server:
        _, frames, end = full_run(server.port, from_seq=0, to_seq=2 * spec.batches_per_epoch)
    assert len(frames) == 8 and end["batches"] == 8
    assert end["skipped"] == 8 and end["images"] == 24  # 4 bad files, met in both epochs
    assert sorted(s["id"] for s in end["skipped_files"]) == sorted(
        s["id"] for b in decoded(frames[:4]) for s in b["skipped"])


def test_parallel_build_gives_the_sequential_bytes(tiny_data, tmp_path):
    import asyncio
    import concurrent.futures

    root = tmp_path / "corrupt"
    _corrupt_dataset(root, tiny_data)
    spec = make_spec(root, batch_size=3, seed=5)

    async def build_all():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            jobs = [ParallelBatch(spec, seq, pool, loop) for seq in range(spec.total_batches)]
            return await asyncio.gather(*(job.future for job in jobs))

    parallel = asyncio.run(build_all())
    sequential = [build_batch(spec, seq) for seq in range(spec.total_batches)]
    assert [b.frame for b in parallel] == [b.frame for b in sequential]
    assert sum(len(b.skipped) for b in parallel) == 4


def test_parallel_build_reports_frame_too_large_through_its_future(tiny_data):
    import asyncio
    import concurrent.futures

    spec = make_spec(tiny_data, batch_size=4, size=(64, 64))

    async def build():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return await ParallelBatch(spec, 0, pool, asyncio.get_running_loop(), max_frame_bytes=4096).future

    with pytest.raises(wire.FrameTooLarge):
        asyncio.run(build())


# ------------------------------------------------------------------ bad input on the socket


def _expect_error(port: int, payload: bytes, code: str, subscribe_first=False, shut_wr=False) -> dict:
    with Client(port) as c:
        assert c.recv()["type"] == "hello"
        if subscribe_first:
            c.send(wire.subscribe(0))
        c.send_raw(payload)
        if shut_wr:
            c.sock.shutdown(socket.SHUT_WR)
        while True:
            msg = c.recv()
            assert msg is not None, "connection closed without an error frame"
            if msg["type"] == "error":
                break
        assert msg["code"] == code, msg
        assert msg["reason"]
        assert c.closed_by_server()
        return msg


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


BAD_INPUTS = {
    "garbage": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "frame_too_large", False),
    "over control limit": (struct.pack(">I", wire.CONTROL_MAX_FRAME_BYTES + 1) + b"{", "frame_too_large", False),
    "truncated": (struct.pack(">I", 50) + b'{"type":', "truncated_frame", True),
    "truncated header": (b"\x00\x00", "truncated_frame", True),
    "not json": (frame(b"{this is not json"), "malformed_frame", False),
    "not utf-8": (frame(b'{"type":"\xff\xfe"}'), "malformed_frame", False),
    "not an object": (frame(b"[1,2,3]"), "malformed_frame", False),
    "unknown type": (frame(b'{"type":"gimme"}'), "malformed_frame", False),
    "wrong field type": (frame(b'{"type":"subscribe","from_seq":"0"}'), "malformed_frame", False),
    "negative seq": (frame(b'{"type":"subscribe","from_seq":-3}'), "malformed_frame", False),
    "consumer sends a batch": (wire.encode(wire.batch(seq=0, epoch=0, ids=[], labels=[],
                                                      pixels=np.zeros((0, 1, 1, 1), np.uint8))),
                               "unexpected_message", False),
    "range past the end": (wire.encode(wire.subscribe(99)), "bad_range", False),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_an_error_frame_and_only_that_connection_closes(tiny_data, name, caplog):
    payload, code, shut_wr = BAD_INPUTS[name]
    spec = make_spec(tiny_data)
    with caplog.at_level(logging.DEBUG, logger="producer"), running_server(spec, config()) as server:
        with Client(server.port) as bystander:  # a healthy consumer connected meanwhile
            bystander.recv()
            _expect_error(server.port, payload, code, shut_wr=shut_wr)
            bystander.send(wire.subscribe(0))
            assert [bystander.recv()["type"] for _ in range(4)] == ["batch"] * 3 + ["end"]
        assert_server_still_serves(server.port, spec)
        assert server.stats.errors_sent[code] == 1
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)


def test_bad_frame_in_the_middle_of_a_stream(tiny_data):
    spec = make_spec(tiny_data, batch_size=1, endless=True)
    with running_server(spec, config(sleep=0.02)) as server:
        _expect_error(server.port, b"\xde\xad\xbe\xef" * 4, "frame_too_large", subscribe_first=True)
        _expect_error(server.port, wire.encode(wire.subscribe(0)), "unexpected_message", subscribe_first=True)
        wait_until(lambda: server.stats.connections_active == 0, "both connections to close")
        assert server.stats.errors_sent == {"frame_too_large": 1, "unexpected_message": 1}


def test_consumer_that_never_subscribes_times_out(tiny_data):
    spec = make_spec(tiny_data)
    with running_server(spec, config(subscribe_timeout=0.5)) as server, Client(server.port) as c:
        assert c.recv()["type"] == "hello"
        msg = c.recv()
        assert msg["type"] == "error" and msg["code"] == "timeout"
        assert c.closed_by_server()
        assert_server_still_serves(server.port, spec)




def test_consumer_that_never_reads_is_dropped_and_others_continue(tiny_data):
    spec = make_spec(tiny_data, batch_size=12, size=(128, 128), endless=True)  # ~260 KB frames
    with running_server(spec, config(send_timeout=1.0, prefetch=2)) as server:
        stuck = Client(server.port, rcvbuf=4096)
        stuck.recv()
        stuck.send(wire.subscribe(0))
        wait_until(lambda: server.stats.batches_sent >= 1, "the first batch")
        # meanwhile another consumer is served completely
        _, frames, _ = full_run(server.port, from_seq=0, to_seq=5)
        assert len(frames) == 5
        wait_until(lambda: server.stats.connections_active == 0, "the stuck consumer to be dropped")
        assert server.stats.inflight == 0
        stuck.close()


def test_slow_reader_keeps_producer_memory_bounded(tiny_data):
    """Building runs ahead by at most `prefetch` batches, and at most one frame waits in the socket buffer."""
    prefetch = 3
    spec = make_spec(tiny_data, batch_size=12, size=(96, 96), endless=True)  # ~147 KB frames
    frame_bytes = len(build_batch(spec, 0).frame)
    with running_server(spec, config(prefetch=prefetch)) as server:
        clients = [Client(server.port, rcvbuf=8192) for _ in range(2)]
        for c in clients:
            c.recv()
            c.send(wire.subscribe(0))
        for _ in range(20):  # read slowly: producers could build hundreds of batches meanwhile
            for c in clients:
                assert wire.recv_message(c.sock)["type"] == "batch"
            time.sleep(0.05)
        stats = server.stats
        assert stats.max_inflight <= prefetch * len(clients)
        assert stats.max_write_buffer <= frame_bytes + 2**16
        sent_per_client = stats.bytes_sent / len(clients)
        for c in clients:
            c.close()
    # what was sent beyond what was read fits in socket buffers, not in unbounded queues
    assert sent_per_client < 21 * frame_bytes + 16 * 2**20


def test_frame_too_large_for_the_limit_is_reported(tiny_data):
    spec = make_spec(tiny_data, batch_size=5, size=(64, 64))
    with running_server(spec, config(max_frame_bytes=8000)) as server, Client(server.port) as c:
        assert c.recv()["type"] == "hello"
        c.send(wire.subscribe(0))
        msg = c.recv()
        assert msg["type"] == "error" and msg["code"] == "frame_too_large" and "batch 0" in msg["reason"]
        assert msg["seq"] == 0
        assert c.closed_by_server()


def test_close_sends_shutdown_to_connected_consumers(tiny_data):
    spec = make_spec(tiny_data, batch_size=1, endless=True)
    with running_server(spec, config(sleep=0.05)) as server:
        c = Client(server.port)
        c.recv()
        c.send(wire.subscribe(0))
        assert c.recv()["type"] == "batch"
        port = server.port
    while True:
        msg = c.recv()
        if msg["type"] != "batch":
            break
    assert msg == {"type": "error", "code": "shutdown", "reason": "the producer is shutting down"}
    assert c.closed_by_server()
    c.close()
    with socket.socket() as s:  # the port can be listened on again (as a restarted producer would)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


# ------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_valid_split_streams_every_image(real_data):
    spec = StreamSpec.from_directory(real_data, "dev", batch_size=16,
                                     preprocessing=imaging.Preprocessing((64, 64)))
    with running_server(spec, config()) as server:
        hello, frames, end = full_run(server.port)
    assert hello["split"] == "valid" and len(hello["classes"]) == 4
    assert end["images"] == 72 and end["skipped"] == 0 and end["batches"] == 5
    batches = decoded(frames)
    assert sorted(i for b in batches for i in b["ids"]) == sorted(f.id for f in spec.files)
    for b in batches:
        px = wire.batch_pixels(b)
        assert px.shape[1:] == (64, 64, 1) and px.std() > 0


def test_a_started_server_decodes_with_opencv_on_its_own_threads_only(tiny_data):
    """The pool's threads are the parallelism: OpenCV's own pool is turned off at start."""
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        with running_server(make_spec(tiny_data), config()) as server:
            with Client(server.port) as client:
                assert client.recv()["type"] == "hello"
            assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
