"""Reading dataset files: confinement to the root, skip records, changed content on replay."""
from __future__ import annotations

import builtins
import os
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import dataset, imaging, reading, synthetic, wire
from producer.running import running_server
from producer.server_config import ServerConfig
from producer.batch import build_batch, public_reason
from producer.stream import StreamSpec

PREP = imaging.Preprocessing(image_size=(16, 16))


def spec_of(root: Path, **kw) -> StreamSpec:
    kw.setdefault("batch_size", 4)
    kw.setdefault("shuffle", False)
    return StreamSpec.from_directory(root, "train", preprocessing=PREP, **kw)


def config(**kw) -> ServerConfig:
    return ServerConfig(port=0, progress=False, workers=2, **kw)


def png(path: Path, value: int = 100, size: int = 20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size), value, np.uint8))
    return path


def messages(port: int, from_seq: int = 0, to_seq: int | None = None) -> list[dict]:
    """hello, then everything up to end or error."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        out = [wire.recv_message(sock)]
        wire.send_message(sock, wire.subscribe(from_seq, to_seq))
        while out[-1]["type"] not in ("end", "error"):
            out.append(wire.recv_message(sock))
    return out


@pytest.fixture
def linked(tmp_path) -> dict:
    """A dataset whose train split holds links leaving the root, and the outside targets."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    for i in range(3):
        png(root / "train" / "normal" / f"n{i}.png", 10 * i)
    png(root / "train" / "adenocarcinoma_x" / "a0.png", 50)
    secret = png(outside / "secret.png", 222)
    (outside / "more").mkdir()
    png(outside / "more" / "m.png", 7)
    (root / "train" / "normal" / "link_png.png").symlink_to(secret)
    (root / "train" / "normal" / "passwd.png").symlink_to("/etc/passwd")
    (root / "train" / "normal" / "sub").symlink_to(outside / "more")
    (root / "train" / "normal" / "loop").symlink_to(root / "train" / "normal")  # inside, but a cycle
    (root / "train" / "squamous_linked").symlink_to(outside / "more")
    png(root / "test" / "normal" / "t.png")
    return {"root": root, "outside": outside, "secret": secret}


OUTSIDE_IDS = {"normal/link_png.png": dataset.OUTSIDE_ROOT, "normal/passwd.png": dataset.OUTSIDE_ROOT,
               "normal/sub": "folder " + dataset.OUTSIDE_ROOT,
               "squamous_linked": "class folder " + dataset.OUTSIDE_ROOT}


def test_listing_names_every_entry_leaving_the_root(linked):
    classes, files = dataset.list_images(linked["root"], "train")
    refused = {f.id: f.refused for f in files if f.refused}
    assert refused == OUTSIDE_IDS
    kept = sorted(f.id for f in files if not f.refused)
    # a link back to its own folder is cut, not walked forever
    assert kept == ["adenocarcinoma_x/a0.png", "normal/n0.png", "normal/n1.png", "normal/n2.png"]
    assert classes == ["adenocarcinoma", "normal", "squamous"]


def test_files_outside_the_root_are_never_opened(linked, monkeypatch):
    """Every descriptor the producer opens (listing, hashing, streaming) lies inside the root."""
    root = linked["root"].resolve()
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def note(fd: int) -> None:
        opened.append(os.path.realpath(f"/proc/self/fd/{fd}"))

    def os_open(path, flags, *args, **kw):
        fd = real_os_open(path, flags, *args, **kw)
        note(fd)
        return fd

    def open_(file, *args, **kw):
        fh = real_open(file, *args, **kw)
        if not isinstance(file, int):
            note(fh.fileno())
        return fh

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    spec = spec_of(linked["root"])
    built = [build_batch(spec, seq) for seq in range(spec.total_batches)]
    monkeypatch.undo()
    assert len(opened) > 10, "the spy saw (almost) nothing: it would prove nothing"
    assert all(Path(p).is_relative_to(root) for p in opened), [p for p in opened if not Path(p).is_relative_to(root)]
    skipped = {r["id"]: r["reason"] for b in built for r in b.skipped}
    assert skipped == OUTSIDE_IDS


def test_stream_names_and_counts_files_outside_the_root(linked):
    spec = spec_of(linked["root"])
    with running_server(spec, config()) as server:
        msgs = messages(server.port)
    end = msgs[-1]
    assert end["type"] == "end"
    batch_skips = {r["id"]: r["reason"] for m in msgs if m["type"] == "batch" for r in m["skipped"]}
    assert batch_skips == OUTSIDE_IDS
    assert {r["id"]: r["reason"] for r in end["skipped_files"]} == OUTSIDE_IDS
    assert end["skipped"] == len(OUTSIDE_IDS)
    secret = cv2.resize(cv2.imread(str(linked["secret"]), cv2.IMREAD_GRAYSCALE), (16, 16),
                        interpolation=cv2.INTER_AREA)
    for m in msgs:
        if m["type"] == "batch":
            assert not any((img[..., 0] == secret).all() for img in wire.batch_pixels(m))
    reasons = [r["reason"] for r in end["skipped_files"]]
    assert not any(str(linked["outside"]) in r or str(linked["root"]) in r or "/" in r for r in reasons)


def test_a_symlink_swapped_in_after_start_up_is_refused(linked):
    spec = spec_of(linked["root"])
    victim = next(f for f in spec.files if f.id == "normal/n1.png")
    victim.path.unlink()
    victim.path.symlink_to(linked["secret"])
    with pytest.raises(imaging.ImageSkipped, match=dataset.OUTSIDE_ROOT):
        reading.read_image(victim, spec.root, PREP)
    # a folder on the way swapped for a link leaving the root: refused too
    folder = linked["root"] / "train" / "adenocarcinoma_x"
    a0 = next(f for f in spec.files if f.id == "adenocarcinoma_x/a0.png")
    shutil.move(folder, linked["outside"] / "moved")
    folder.symlink_to(linked["outside"] / "moved")
    with pytest.raises(imaging.ImageSkipped, match=dataset.OUTSIDE_ROOT):
        reading.read_image(a0, spec.root, PREP)


def test_open_confined_refuses_a_link_raced_in_after_the_check(linked, monkeypatch):
    """The check resolves a clean path; a link appearing before the open is still not followed."""
    spec = spec_of(linked["root"])
    victim = next(f for f in spec.files if f.id == "normal/n2.png")
    real_realpath = os.path.realpath

    def realpath_then_swap(path, *a, **kw):
        result = real_realpath(path, *a, **kw)
        if Path(path) == victim.path:
            victim.path.unlink()
            victim.path.symlink_to(linked["secret"])
        return result

    monkeypatch.setattr(os.path, "realpath", realpath_then_swap)
    with pytest.raises(imaging.ImageSkipped, match=dataset.OUTSIDE_ROOT):
        reading.open_confined(victim.path, spec.root)


def test_a_split_folder_leaving_the_root_is_an_error(tmp_path):
    png(tmp_path / "elsewhere" / "normal" / "a.png")
    (tmp_path / "data").mkdir()
    png(tmp_path / "data" / "test" / "normal" / "b.png")
    (tmp_path / "data" / "train").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(dataset.DatasetError, match="outside"):
        dataset.list_images(tmp_path / "data", "train")


# ------------------------------------------------------------------ skip reasons


def test_public_reason_strips_absolute_paths_and_control_characters():
    f = dataset.ImageFile(id="normal/a.png", path=Path("/srv/data/train/normal/a.png"), label=0, size=1, mtime_ns=1)
    reason = public_reason("OpenCV: /io/opencv/modules/imgcodecs/src/loadsave.cpp:77: error in "
                           "/srv/data/train/normal/a.png\x00\x1b[31m", f)
    assert "/io/" not in reason and "/srv" not in reason and "\x00" not in reason and "\x1b" not in reason
    assert "normal/a.png" in reason and "<path>" in reason
    assert len(public_reason("x" * 5000, f)) == wire.MAX_REASON_CHARS


def test_every_skip_reason_in_a_stream_is_free_of_paths(tmp_path):
    root = tmp_path / "data"
    synthetic.generate(root, per_class=1, progress=False)
    folder = next((root / "train").iterdir())
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "noperm.png").write_bytes(b"x")
    os.chmod(folder / "noperm.png", 0)
    try:
        spec = spec_of(root)
        records = [r for s in range(spec.total_batches) for r in build_batch(spec, s).skipped]
    finally:
        os.chmod(folder / "noperm.png", 0o644)
    assert {r["id"].split("/")[-1] for r in records} >= {"bad.png"}
    for r in records:
        assert str(tmp_path) not in r["reason"] and not r["reason"].startswith("/"), r


# ------------------------------------------------------------------ changed files


@pytest.fixture
def small(tmp_path) -> Path:
    root = tmp_path / "data"
    for i in range(8):
        png(root / "train" / ("normal" if i % 2 else "adenocarcinoma") / f"f{i}.png", 20 * i)
    return root


def _rewrite(path: Path, value: int) -> None:
    """Other, valid pixels in the same file (a same-size change has its own test)."""
    png(path, value, size=24)


def test_replay_of_a_batch_whose_file_changed_is_a_file_changed_error(small):
    spec = spec_of(small)
    with running_server(spec, config()) as server:
        first = messages(server.port, 0, 1)
        assert [m["type"] for m in first] == ["hello", "batch", "end"]
        victim = first[1]["ids"][1]
        _rewrite(spec.root / "train" / victim, 255)
        again = messages(server.port, 0, 1)
        later = messages(server.port, 1, 2)  # a batch without the file is still served
    assert again[0]["stream_id"] == first[0]["stream_id"]
    error = again[-1]
    assert [m["type"] for m in again] == ["hello", "error"], "no batch frame may carry the changed bytes"
    assert error["code"] == "file_changed" and error["seq"] == 0 and victim in error["reason"]
    assert str(small) not in error["reason"]
    assert [m["type"] for m in later] == ["hello", "batch", "end"]


def test_same_size_change_is_caught_by_the_digest(small):
    spec = spec_of(small)
    f = spec.plan(0)[1][0]
    data = bytearray(f.path.read_bytes())
    data[40] ^= 0xFF
    f.path.write_bytes(bytes(data))
    os.utime(f.path, ns=(f.mtime_ns, f.mtime_ns))  # even the mtime is put back
    with pytest.raises(wire.FileChanged, match="digest") as info:
        build_batch(spec, 0)
    assert info.value.seq == 0 and f.id in info.value.message


def test_skip_policy_leaves_the_changed_file_out_and_names_it(small):
    spec = spec_of(small, on_changed_file="skip")
    victim = spec.plan(0)[1][2]
    before = build_batch(spec, 0)
    _rewrite(victim.path, 3)
    after = build_batch(spec, 0)
    assert before.images == 4 and after.images == 3
    assert [r["id"] for r in after.skipped] == [victim.id] and "changed" in after.skipped[0]["reason"]
    msg = wire.decode(after.frame[4:])
    assert victim.id not in msg["ids"]
    # a restarted producer hashes the new content: another stream id
    assert spec_of(small).stream_id != spec.stream_id


def test_unchanged_files_replay_byte_identically(small):
    spec = spec_of(small)
    assert build_batch(spec, 1).frame == build_batch(spec, 1).frame
    assert all(f.digest and len(f.digest) == 64 for f in spec.files)


def test_changed_file_policy_is_checked():
    with pytest.raises(ValueError, match="on_changed_file"):
        StreamSpec(split="train", classes=("a",), batch_size=1, on_changed_file="ignore",
                   files=(dataset.ImageFile("a/x.png", Path("/x/a/x.png"), 0, 1, 1),))
