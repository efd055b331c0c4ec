"""A mixed PNG + DICOM folder end to end: the real producer, then ``chestct train`` and
``chestct predict`` (in this process, on the shared session); the report counts every file,
and no patient name leaves the producer."""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest

pytest.importorskip("pydicom")

from consumer import cli  # noqa: E402
from fake_producer import Processes, producer_args, wait_for_port  # noqa: E402
from producer import synthetic  # noqa: E402
from producer.launch import free_port  # noqa: E402
from test_producer_dicom import write_dicom  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FEATURES = ["--features", "hog", "--feature-option", "hog.pixels_per_cell=8",
            "--feature-option", "hog.cells_per_block=2", "--backend", "skimage"]
NAME = "Doe^Jane-Private"


def _add_dicoms(split_dir, rng) -> int:
    """Two single-frame files and one 3-frame file per class folder; returns images added."""
    added = 0
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for k in range(2):
            write_dicom(folder / f"ct{k}.dcm", rng.integers(0, 2000, (40, 48)).astype(np.uint16),
                        intercept=-1024, slope=1, patient=(NAME, "ID-4711"))
        write_dicom(folder / "series", rng.integers(0, 2000, (3, 40, 48)).astype(np.uint16),
                    intercept=-1024, slope=1, patient=(NAME, "ID-4711"))  # no extension: found by magic
        added += 2 + 3
    (split_dir / sorted(p.name for p in split_dir.iterdir() if p.is_dir())[0] / "broken.dcm").write_bytes(
        b"\0" * 128 + b"DICM" + b"\xff" * 64)
    return added


def test_mixed_png_and_dicom_train_then_predict_counts_every_file(tmp_path, spark, capfd):
    data = tmp_path / "data"
    synthetic.generate(data, per_class=3, progress=False)
    rng = np.random.default_rng(0)
    pngs = {split: sum(1 for p in (data / split).rglob("*") if p.is_file()) for split in ("train", "test")}
    dicoms = {split: _add_dicoms(data / split, rng) for split in ("train", "test")}
    procs = Processes()
    model = tmp_path / "model"
    consumer_output = []
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        for split, args in (("train", ["train", "--model", "sgd", "--save-path", str(model)]),
                            ("test", ["predict", "--save-path", str(model), "--report", str(tmp_path / "r.json")])):
            port = free_port()
            producer = procs.start(producer_args(data, split, port, "--image-size", "32", "32"),
                                   tmp_path / f"producer-{split}.log")
            wait_for_port(port, producer)
            # In this test process, on its shared session: the consumer is the CLI's main().
            code = cli.main([*args, "--no-progress", "--port", str(port), "--work-dir", str(tmp_path / "w"),
                             "--master", "local[2]", *FEATURES])
            captured = capfd.readouterr()
            consumer_output.append(captured.out + captured.err)
            assert code == 0, consumer_output[-1][-3000:]
            procs.stop(producer)
    finally:
        procs.stop_all()
    assert not spark.sparkContext._jsc.sc().isStopped()  # the command left the session it found
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # and the handlers
    report = json.loads((tmp_path / "r.json").read_text())
    # Every test file is counted: each PNG/JPEG and DICOM frame predicted, the broken DICOM named.
    assert report["n_images"] == pngs["test"] + dicoms["test"]
    assert [f["id"].split("/")[-1] for f in report["skipped_files"]] == ["broken.dcm"]
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log")) + "".join(consumer_output)
    assert NAME not in logs and "ID-4711" not in logs and NAME not in (tmp_path / "r.json").read_text()
    meta = json.loads(next(model.glob("versions/*/model.json")).read_text())["meta"]
    assert meta["preprocessing"]["window"] == "lung"
    assert meta["n_train_images"] == pngs["train"] + dicoms["train"]
