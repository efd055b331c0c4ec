"""DICOM in the producer: HU through rescale, windows, MONOCHROME1, frames, decoders, privacy."""
from __future__ import annotations

import logging
import re
import socket
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.pixels import get_decoder  # noqa: E402
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless,  # noqa: E402
                         RLELossless, generate_uid)

from producer import dataset, dicom, imaging, wire  # noqa: E402
from producer.cli import build_parser, spec_from_args  # noqa: E402
from producer.launch import Processes, free_port, wait_for_port  # noqa: E402
from producer.running import running_server  # noqa: E402
from producer.server_config import ServerConfig  # noqa: E402
from producer.batch import build_batch  # noqa: E402
from producer.stream import StreamSpec  # noqa: E402

SECRET_NAME = "Doe^Jane Secretname"
SECRET_ID = "PID-7741-SECRET"
#: The id's digits on their own, not inside a longer number or base64 run: a free port such as
#: 57741 in a log line, or pixels' base64, is no leak.
LONE_ID_DIGITS = re.compile(r"(?<![0-9A-Za-z+/])7741(?![0-9A-Za-z+/=])")
LUNG = dicom.WINDOW_PRESETS["lung"]


def write_dicom(path: Path, stored, *, slope=None, intercept=None, photometric="MONOCHROME2",
                patient: tuple[str, str] | None = None, syntax=ExplicitVRLittleEndian) -> Path:
    """Write a CT DICOM of ``stored`` values (2-D, or 3-D for frames) and return its path."""
    stored = np.asarray(stored)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    if patient:
        ds.PatientName, ds.PatientID = patient
    ds.Rows, ds.Columns = stored.shape[-2:]
    if stored.ndim == 3:
        ds.NumberOfFrames = stored.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    signed = stored.dtype.kind == "i"
    ds.PixelRepresentation = int(signed)
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def read(path: Path, frame=None, window="lung", max_pixels=10**8) -> np.ndarray:
    return dicom.decode_frame(path.read_bytes(), frame, window, max_pixels)


def skip_reason(path: Path, prep: imaging.Preprocessing | None = None, frame=None) -> str:
    with pytest.raises(imaging.ImageSkipped) as info:
        imaging.load(path, prep or imaging.Preprocessing(image_size=(8, 8)), frame=frame)
    return info.value.reason


# ------------------------------------------------------------------ windows


def test_window_settings_normalise_to_one_canonical_string():
    assert dicom.canonical_window("Lung") == "lung"
    assert dicom.canonical_window(" -600 , 1500.0 ") == "lung"  # the preset's numbers are the preset
    assert dicom.canonical_window("40,80") == "40,80"
    assert dicom.canonical_window("-0,100") == dicom.canonical_window("0.0,100") == "0,100"
    assert dicom.canonical_window("-500.50,1e3") == "-500.5,1000"
    assert dicom.window_values("-500.5,1000") == (-500.5, 1000.0)
    assert dicom.window_values("bone") == dicom.WINDOW_PRESETS["bone"]
    assert imaging.Preprocessing().window == dicom.DEFAULT_WINDOW == "lung"
    for bad in ("lungs", "1,2,3", "a,b", "10,0", "10,-5", "nan,100", "0,inf", ""):
        with pytest.raises(ValueError, match="window"):
            dicom.canonical_window(bad)
    with pytest.raises(ValueError, match="window"):
        imaging.Preprocessing(window="10,0")


def test_apply_window_maps_the_window_edges_to_0_and_255():
    hu = np.array([-2000, -1350, -600, 0, 150, 3000], dtype=np.float64)
    # lung: lower edge -1350, upper 150; 255/1500 per HU; -600 -> 127.5 and 0 -> 229.5 round up
    np.testing.assert_array_equal(dicom.apply_window(hu, LUNG), [0, 0, 128, 230, 255, 255])
    np.testing.assert_array_equal(dicom.apply_window(hu, LUNG, invert=True), [255, 255, 127, 25, 0, 0])


# ------------------------------------------------------------------ reading


def test_stored_values_become_hu_through_slope_and_intercept(tmp_path):
    stored = np.array([[0, 100], [500, 587]], dtype=np.uint16)  # HU = 2 * stored - 1024
    path = write_dicom(tmp_path / "a.dcm", stored, slope="2", intercept="-1024")
    # HU -1024, -824, -24, 150 in the lung window [-1350, 150]: (HU + 1350) * 255 / 1500
    np.testing.assert_array_equal(read(path), [[55, 89], [225, 255]])
    # without the tags the stored values are HU themselves
    plain = write_dicom(tmp_path / "b.dcm", np.array([[-600, 0]], dtype=np.int16))
    np.testing.assert_array_equal(read(plain), [[128, 230]])
    np.testing.assert_array_equal(read(plain, window="-300,600"), [[0, 255]])


def test_monochrome1_is_inverted(tmp_path):
    stored = np.array([[-1350, -600, 0, 150]], dtype=np.int16)
    mono2 = read(write_dicom(tmp_path / "m2.dcm", stored))
    mono1 = read(write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(mono2, [[0, 128, 230, 255]])
    np.testing.assert_array_equal(mono1, 255 - mono2)


def test_pydicom_ct_test_file_matches_an_independent_decode():
    path = Path(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    lower = LUNG.level - LUNG.width / 2
    expected = np.clip(np.floor((hu - lower) * 255 / LUNG.width + 0.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(read(path), expected)
    assert 0 < expected.mean() < 255  # a real slice, not a flat image
    prep = imaging.Preprocessing(image_size=(64, 48), color_mode="rgb")
    out = imaging.load(path, prep)
    resized = cv2.resize(expected, (48, 64), interpolation=cv2.INTER_AREA)
    assert out.shape == (64, 48, 3) and out.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], resized)


def test_multi_frame_files_give_one_image_per_frame(tmp_path):
    frames = np.stack([np.full((6, 5), hu, np.int16) for hu in (-1350, -600, 150)])
    path = write_dicom(tmp_path / "train" / "normal" / "series1.dcm", frames)
    write_dicom(tmp_path / "train" / "normal" / "single.dcm", frames[0])
    assert dicom.count_frames(path) == 3
    _, files = dataset.list_images(tmp_path, "train")
    assert [(f.id, f.frame) for f in files] == [
        ("normal/series1.dcm#frame=1", 1), ("normal/series1.dcm#frame=2", 2), ("normal/series1.dcm#frame=3", 3),
        ("normal/single.dcm", None)]
    for f, value in zip(files, (0, 128, 255)):
        assert (read(f.path, f.frame) == value).all()
    # the stream's recorded digests keep every frame's number; the frames share one digest
    spec = StreamSpec.from_directory(tmp_path, "train", batch_size=4, shuffle=False,
                                     preprocessing=imaging.Preprocessing(image_size=(4, 4)))
    assert [f.frame for f in spec.files] == [1, 2, 3, None]
    assert len({f.digest for f in spec.files[:3]}) == 1 and spec.files[0].digest is not None
    pixels = wire.batch_pixels(wire.decode(build_batch(spec, 0).frame[4:]))
    assert [int(p.max()) for p in pixels] == [0, 128, 255, 0]
    prep = imaging.Preprocessing(image_size=(4, 4))
    assert "outside the file's 3 frames" in skip_reason(path, prep, frame=4)
    assert "without a frame number" in skip_reason(path, prep)


def test_enhanced_ct_rescale_comes_from_its_functional_groups(tmp_path):
    def groups(slope, intercept):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "HU"
        group = Dataset()
        group.PixelValueTransformationSequence = [transform]
        return group

    stored = np.stack([np.full((4, 4), 424, np.uint16), np.full((4, 4), 1174, np.uint16)])
    shared = write_dicom(tmp_path / "shared.dcm", stored)
    ds = pydicom.dcmread(shared)
    ds.SharedFunctionalGroupsSequence = [groups("1", "-1024")]  # HU -600 and 150
    ds.save_as(shared)
    assert (read(shared, 1) == 128).all() and (read(shared, 2) == 255).all()
    per_frame = write_dicom(tmp_path / "per_frame.dcm", stored)
    ds = pydicom.dcmread(per_frame)
    ds.PerFrameFunctionalGroupsSequence = [groups("1", "-1024"), groups("2", "-2498")]  # -600 and -150
    ds.save_as(per_frame)
    assert (read(per_frame, 1) == 128).all() and (read(per_frame, 2) == 204).all()


def test_the_frame_count_comes_from_the_header_alone(tmp_path):
    path = write_dicom(tmp_path / "x.dcm", np.zeros((4, 8, 8), np.int16))
    data = path.read_bytes()
    path.write_bytes(data[:-300])  # pixel data cut short: the header still counts 4 frames
    assert dicom.count_frames(path) == 4
    assert "cannot be decoded" in skip_reason(path, frame=2)


def test_extensionless_dicom_is_found_by_its_magic_and_other_files_are_not_listed(tmp_path):
    folder = tmp_path / "train" / "normal"
    write_dicom(folder / "1.2.840.10008.99.1", np.zeros((4, 4), np.int16))
    write_dicom(folder / "IM0001", np.full((4, 4), 150, np.int16))
    (folder / "notes.txt").write_text("not an image " * 20)
    (folder / "README").write_bytes(b"\0" * 200)
    _, files = dataset.list_images(tmp_path, "train")
    assert [f.id for f in files] == ["normal/1.2.840.10008.99.1", "normal/IM0001"]
    assert (imaging.load(files[1].path, imaging.Preprocessing(image_size=(4, 4))) == 255).all()


# ------------------------------------------------------------------ what is skipped


def test_compressed_files_decode_through_the_installed_decoders(tmp_path):
    stored = (np.arange(64 * 64, dtype=np.int16).reshape(64, 64) % 200) * 10 - 1000
    plain = read(write_dicom(tmp_path / "plain.dcm", stored))
    rle = write_dicom(tmp_path / "rle.dcm", stored, syntax=RLELossless)
    assert pydicom.dcmread(rle).file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(read(rle), plain)
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg (the JPEG 2000 codec) is not installed")
    j2k = write_dicom(tmp_path / "j2k.dcm", stored, syntax=JPEG2000Lossless)
    np.testing.assert_array_equal(read(j2k), plain)
    bundled = Path(get_testdata_file("MR_small_jp2klossless.dcm"))
    assert read(bundled).shape == (64, 64)


def test_a_compressed_file_without_its_decoder_is_skipped_naming_the_syntax(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "rle.dcm", np.zeros((8, 8), np.int16), syntax=RLELossless)
    monkeypatch.setattr(get_decoder(RLELossless), "_available", {})  # as if no plugin were installed
    reason = skip_reason(path)
    assert "RLE Lossless" in reason and str(RLELossless) in reason and "decoder plugin" in reason


def test_colour_bombs_limits_and_non_dicom_are_skipped_with_reasons(tmp_path):
    assert "MONOCHROME" in skip_reason(Path(get_testdata_file("SC_rgb_rle.dcm")))
    bomb = write_dicom(tmp_path / "bomb.dcm", np.zeros((2, 2), np.int16))
    ds = pydicom.dcmread(bomb)
    ds.Rows = ds.Columns = 60000  # announces 3.6 GPixel with 8 bytes of pixel data
    ds.save_as(bomb)
    assert "MPixel limit" in skip_reason(bomb)
    frames = write_dicom(tmp_path / "frames.dcm", np.zeros((3, 10, 10), np.int16))
    assert "MPixel limit" in skip_reason(frames, imaging.Preprocessing(image_size=(4, 4), max_image_pixels=299),
                                         frame=1)
    big = write_dicom(tmp_path / "big.dcm", np.zeros((64, 64), np.int16))
    assert "MiB limit" in skip_reason(big, imaging.Preprocessing(image_size=(4, 4), max_file_bytes=1000))
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\x89PNG not really" * 20)
    assert "unknown signature" in skip_reason(fake)  # named .dcm, but no DICM magic


def test_without_pydicom_dicom_files_are_listed_and_skipped_with_the_install_hint(tmp_path, monkeypatch):
    path = write_dicom(tmp_path / "train" / "a" / "x.dcm", np.zeros((3, 4, 4), np.int16))
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now raises ImportError
    _, files = dataset.list_images(tmp_path, "train")
    assert [f.id for f in files] == ["a/x.dcm"]  # frames cannot be counted: listed once
    assert "pip install 'chestct[dicom]'" in skip_reason(path)
    assert dicom.decoder_description() != "" and imaging.Preprocessing().describe()["dicom_decoder"]


def test_the_window_is_part_of_the_stream_identity(tmp_path):
    write_dicom(tmp_path / "train" / "a" / "x.dcm", np.zeros((4, 4), np.int16))

    def spec(window):
        prep = imaging.Preprocessing(image_size=(4, 4), window=window)
        return StreamSpec.from_directory(tmp_path, "train", batch_size=1, preprocessing=prep)

    assert spec("lung").hello()["preprocessing"]["window"] == "lung"
    assert spec("-600,1500").stream_id == spec("lung").stream_id
    assert spec("bone").stream_id != spec("lung").stream_id
    assert spec("bone").hello()["preprocessing"]["window"] == "bone"
    assert "pydicom-" in spec("lung").hello()["preprocessing"]["dicom_decoder"]


def test_cli_window_flag(tmp_path):
    write_dicom(tmp_path / "train" / "a" / "x.dcm", np.zeros((4, 4), np.int16))
    ap = build_parser()
    args = ap.parse_args(["-d", str(tmp_path), "--window=-500,1000"])
    assert spec_from_args(args, ap).preprocessing.window == "-500,1000"
    assert ap.parse_args(["-d", str(tmp_path)]).window == "lung"
    with pytest.raises(SystemExit):
        ap.parse_args(["-d", str(tmp_path), "--window", "lungs"])


# ------------------------------------------------------------------ privacy and end to end


def read_stream(port: int) -> list[bytes]:
    """Every payload of a whole stream (hello, batches, end) exactly as sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        raw = [recv_payload(sock)]
        wire.send_message(sock, wire.subscribe(0, None))
        while wire.decode(raw[-1])["type"] != "end":
            raw.append(recv_payload(sock))
    return raw


def recv_payload(sock: socket.socket) -> bytes:
    """One frame's raw payload bytes, exactly as sent."""
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "producer closed the connection mid-frame"
            buf += chunk
        return buf
    return exactly(struct.unpack(">I", exactly(4))[0])


def privacy_folder(root: Path) -> Path:
    """A mixed PNG + DICOM train split whose DICOMs all carry a patient name and id."""
    folder = root / "train" / "normal_x"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "slice.png"), np.full((20, 20), 90, np.uint8))
    cv2.imwrite(str(root / "train" / "normal_x" / "slice.jpg"), np.full((20, 20), 200, np.uint8))
    patient = (SECRET_NAME, SECRET_ID)
    write_dicom(folder / "good.dcm", np.full((10, 10), -600, np.int16), patient=patient)
    write_dicom(folder / "series.dcm", np.stack([np.full((10, 10), v, np.int16) for v in (-1350, 150)]),
                patient=patient)
    write_dicom(folder / "rle.dcm", np.full((10, 10), 150, np.int16), patient=patient, syntax=RLELossless)
    cut = write_dicom(folder / "cut.dcm", np.zeros((10, 10), np.int16), patient=patient)
    cut.write_bytes(cut.read_bytes()[:-50])
    colour = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    colour.PatientName, colour.PatientID = patient
    colour.save_as(folder / "colour.dcm")
    # a header broken right after the patient module: pydicom's own error text could quote it
    broken = write_dicom(folder / "broken.dcm", np.zeros((10, 10), np.int16), patient=patient).read_bytes()
    at = broken.index(SECRET_ID.encode()) + len(SECRET_ID)
    (folder / "broken.dcm").write_bytes(broken[:at] + b"\xff\xff\xff\xff" * 8)
    # identifier text where a number belongs: pydicom's validation warning would quote it
    odd = write_dicom(folder / "odd.dcm", np.zeros((2, 10, 10), np.int16), patient=patient).read_bytes()
    element = b"(\x00\x08\x00IS\x02\x002 "
    assert odd.count(element) == 1
    (folder / "odd.dcm").write_bytes(odd.replace(element, b"(\x00\x08\x00IS\x10\x00" + SECRET_ID.encode() + b" "))
    (root / "train" / "other_y").mkdir()
    cv2.imwrite(str(root / "train" / "other_y" / "o.png"), np.zeros((20, 20), np.uint8))
    return root


def test_a_mixed_folder_is_served_end_to_end_and_no_patient_identifier_leaves(tmp_path, monkeypatch, caplog):
    root = privacy_folder(tmp_path)
    monkeypatch.setattr(get_decoder(RLELossless), "_available", {})  # rle.dcm: skipped for its syntax
    prep = imaging.Preprocessing(image_size=(10, 10))
    spec = StreamSpec.from_directory(root, "train", batch_size=3, preprocessing=prep, shuffle=False)
    ids = [f.id for f in spec.files]
    assert ids == ["normal_x/broken.dcm", "normal_x/colour.dcm", "normal_x/cut.dcm", "normal_x/good.dcm",
                   "normal_x/odd.dcm", "normal_x/rle.dcm", "normal_x/series.dcm#frame=1", "normal_x/series.dcm#frame=2",
                   "normal_x/slice.jpg", "normal_x/slice.png", "other_y/o.png"]
    caplog.set_level(logging.DEBUG)
    with running_server(spec, ServerConfig(port=0, progress=False, workers=2)) as server:
        raw = read_stream(server.port)
    messages = [wire.decode(r) for r in raw]
    hello, batches, end = messages[0], messages[1:-1], messages[-1]
    assert hello["total_images"] == 11 and hello["preprocessing"]["window"] == "lung"
    served = [i for b in batches for i in b["ids"]]
    skipped = {s["id"]: s["reason"] for b in batches for s in b["skipped"]}
    assert sorted(served + list(skipped)) == sorted(ids)  # every file and frame accounted for once
    assert set(skipped) == {"normal_x/broken.dcm", "normal_x/colour.dcm", "normal_x/cut.dcm", "normal_x/odd.dcm",
                            "normal_x/rle.dcm"}
    assert "RLE Lossless" in skipped["normal_x/rle.dcm"] and "MONOCHROME" in skipped["normal_x/colour.dcm"]
    assert end["batches"] == 4 and end["images"] == 6 and end["skipped"] == 5
    pixels = {i: img for b in batches for i, img in zip(b["ids"], wire.batch_pixels(b))}
    assert (pixels["normal_x/good.dcm"] == 128).all()
    assert (pixels["normal_x/series.dcm#frame=1"] == 0).all() and (pixels["normal_x/series.dcm#frame=2"] == 255).all()
    assert (pixels["normal_x/slice.png"] == 90).all()
    # the patient's name and id are in the files, and nowhere in what the producer sent or logged
    assert SECRET_NAME.encode() in (root / "train" / "normal_x" / "good.dcm").read_bytes()
    everything = b"".join(raw).decode() + caplog.text
    for secret in (SECRET_NAME, SECRET_ID, "Secretname"):
        assert secret not in everything
    assert not LONE_ID_DIGITS.search(everything)
    assert LONE_ID_DIGITS.search("patient 7741.") and LONE_ID_DIGITS.search('"id":"7741"')
    assert not LONE_ID_DIGITS.search("127.0.0.1:57741 closed, pixels AAb7741Q")
    # the same batches rebuilt directly carry the same reasons: nothing depends on the server
    assert build_batch(spec, 0).skipped == tuple(batches[0]["skipped"])


# ------------------------------------------------------------------ fuzzing


@pytest.fixture(scope="module")
def sample_bytes(tmp_path_factory) -> bytes:
    frames = np.stack([np.full((16, 16), hu, np.int16) for hu in (-1000, 0, 400)])
    path = write_dicom(tmp_path_factory.mktemp("fuzz") / "s.dcm", frames, slope="1", intercept="0",
                       patient=(SECRET_NAME, SECRET_ID))
    return path.read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_dicom_gives_pixels_or_a_reason_never_a_crash(sample_bytes, tmp_path, caplog, data):
    """Flipped bytes and cut files: pixels of the right shape or ImageSkipped, and pydicom logs nothing."""
    blob = bytearray(sample_bytes)
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        blob[data.draw(st.integers(0, len(blob) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
    blob = blob[:data.draw(st.integers(0, len(blob)), label="length")]
    path = tmp_path / "fuzz.dcm"
    path.write_bytes(bytes(blob))
    prep = imaging.Preprocessing(image_size=(8, 8))
    frame = data.draw(st.sampled_from([None, 1, 3]), label="frame")
    try:
        out = imaging.load(path, prep, frame=frame)
    except imaging.ImageSkipped as exc:
        assert exc.reason and SECRET_NAME not in exc.reason and SECRET_ID not in exc.reason
    else:
        assert out.shape == (8, 8, 1) and out.dtype == np.uint8
    assert dicom.count_frames(path) >= 1
    # pydicom's own log lines quote file content: none may get out (warnings: see the CLI test)
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]


def test_the_producer_cli_sends_and_logs_no_patient_identifier(tmp_path):
    """The real command line in its own process: frames, log lines and warnings on stderr."""
    root = privacy_folder(tmp_path / "data")
    log = tmp_path / "producer.log"
    port = free_port()
    procs = Processes()
    try:
        proc = procs.start([sys.executable, "-m", "producer", "-d", str(root), "--split", "train", "--augment", "0",
                            "--batch-size", "4", "--port", str(port), "--no-progress", "--log-level", "DEBUG",
                            "--window", "mediastinum"], log=log, cwd=Path(__file__).resolve().parents[1])
        wait_for_port(port, proc)
        raw = read_stream(port)
    finally:
        procs.stop_all()
    messages = [wire.decode(r) for r in raw]
    assert messages[0]["preprocessing"]["window"] == "mediastinum"
    end = messages[-1]
    assert end["images"] + end["skipped"] == messages[0]["total_images"] == 11
    assert end["skipped"] == 4  # broken, colour, cut, odd (rle decodes: its decoder is installed here)
    text = log.read_text()
    assert "skipping" in text and "odd.dcm" in text  # the log does name the skipped files
    everything = b"".join(raw).decode() + text
    for secret in (SECRET_NAME, SECRET_ID, "Secretname"):
        assert secret not in everything
    assert not LONE_ID_DIGITS.search(everything)
