"""Exactly-once: SIGKILL the consumer mid-stream, restart it on the same checkpoint.

The real producer streams the real train split; ``chestct ingest`` writes the features
table. The consumer (driver, JVM and Python workers: its whole process group) is killed
while a micro-batch is in flight (its offsets logged, not yet committed). The restarted
consumer replays that batch from the producer (deterministic, stream id checked) and
finishes. The committed table must then hold each of the split's 613 images exactly once.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import free_port
from sink_log import committed_batch_ids, committed_files, read_table
from fake_producer import (
    Processes,
    consumer_args,
    port_is_free,
    producer_args,
    wait_for_port,
)

pytestmark = [pytest.mark.realdata, pytest.mark.spark, pytest.mark.slow]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg"}


def _split_ids(data: Path, split: str) -> list[str]:
    root = data / split
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _log_ids(folder: Path) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(p.name) for p in folder.iterdir() if re.fullmatch(r"\d+", p.name)}


def _wait_mid_batch(checkpoint: Path, proc, timeout: float = 240.0) -> int:
    """Wait until a micro-batch after the first commit is planned but not committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the consumer ended (code {proc.returncode}) before it could be killed")
        offsets, commits = _log_ids(checkpoint / "offsets"), _log_ids(checkpoint / "commits")
        in_flight = offsets - commits
        if commits and in_flight:
            return max(in_flight)
        time.sleep(0.05)
    raise AssertionError("no micro-batch in flight was observed")


def test_sigkill_mid_stream_then_restart_gives_each_image_once(real_data, tmp_path):
    expected = _split_ids(real_data, "train")
    assert len(expected) == 613
    procs = Processes()
    port = free_port()
    work = tmp_path / "work"
    consumer = consumer_args("ingest", "--port", str(port), "--features", "hog", "--backend", "skimage",
                             "--feature-option", "hog.pixels_per_cell=16",
                             "--feature-option", "hog.cells_per_block=2",
                             "--work-dir", str(work), "--master", "local[2]",
                             "--max-batches-per-trigger", "4", "--connect-timeout", "60")
    try:
        producer = procs.start(producer_args(real_data, "train", port, "--image-size", "64", "64",
                                             "--batch-size", "32"), tmp_path / "producer.log")
        wait_for_port(port, producer)
        first = procs.start(consumer, tmp_path / "consumer-1.log")
        deadline = time.monotonic() + 120
        while not list(work.glob("streams/*/*/checkpoint")) and time.monotonic() < deadline:
            time.sleep(0.2)
        (checkpoint,) = work.glob("streams/*/*/checkpoint")
        table = checkpoint.parent / "table"
        in_flight = _wait_mid_batch(checkpoint, first)
        Processes.kill(first)  # SIGKILL to driver, JVM and Python workers at once
        first.wait(30)
        assert first.returncode == -9
        committed_before = len(read_table(table))
        assert 0 < committed_before < len(expected), "the kill did not land mid-stream"
        # The sink may have committed the in-flight batch just before the kill (its log is
        # written before the checkpoint's commit): a restart then skips it, never repeats it.
        assert max(committed_batch_ids(table)) <= in_flight

        second = procs.start(consumer, tmp_path / "consumer-2.log")
        assert second.wait(420) == 0, (tmp_path / "consumer-2.log").read_text()[-3000:]
        frame = read_table(table)
    finally:
        procs.stop_all()
    assert port_is_free(port)

    images = frame[frame["image_id"].notna()]
    assert len(frame) == len(images), "no batch may be skipped here"
    assert images["image_id"].is_unique, images["image_id"][images["image_id"].duplicated()].tolist()
    assert sorted(images["image_id"]) == expected
    assert images["features"].map(len).nunique() == 1
    # The replayed table has the same number of batches as the stream, each whole.
    per_seq = images.groupby("seq").size()
    assert per_seq.index.tolist() == list(range(20)) and per_seq.iloc[:-1].eq(32).all()
    # Files a killed batch may have left behind are not part of the table.
    stray = set(table.glob("*.parquet")) - set(committed_files(table))
    print(f"committed before kill: {committed_before} rows; stray part files ignored: {len(stray)}")
