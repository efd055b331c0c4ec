"""scripts/predict-timeline.py's report: steady rate, CPU per image by kind, latencies, plot."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("predict_timeline", ROOT / "scripts" / "predict-timeline.py")
timeline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(timeline)


def test_process_kinds_are_told_by_their_command_lines():
    assert timeline.kind_of("/usr/lib/jvm/java-17/bin/java -cp ... SparkSubmit") == "jvm"
    assert timeline.kind_of("python -m pyspark.daemon pyspark.worker") == "python worker"
    assert timeline.kind_of("python -m pyspark.daemon pyspark.sql.worker.plan_data_source_read") == "spark python helpers"
    assert timeline.kind_of("python -m producer --directory d") == "producer"
    assert timeline.kind_of("python -c ... predict --port 1") == "other"


def test_report_counts_whole_micro_batches_and_cpu_per_image(tmp_path, capsys):
    # Two micro-batches of 2 producer batches (8 images each) 1 s apart; the worker (pid 2)
    # burns 0.8 CPU s and the producer (pid 3) 0.4 between the bursts' last lines.
    lines = [(10.0, "batch seq=    0 images=     8"), (10.004, "batch seq=    1 images=    16"),
             (11.0, "batch seq=    2 images=    24"), (11.004, "batch seq=    3 images=    32")]
    samples = [(10.0, {2: 1.0, 3: 1.0}, (0, 0)), (10.5, {2: 1.4, 3: 1.2}, (50, 100)),
               (11.0, {2: 1.8, 3: 1.4}, (100, 200))]
    cmd = {2: "python -m pyspark.daemon pyspark.worker", 3: "python -m producer -d x"}
    sent = "\n".join(f"sent batch {s} at {t}" for s, t in [(0, 9.5), (1, 9.6), (2, 10.5), (3, 10.6)])
    progress = tmp_path / "progress.jsonl"
    progress.write_text(json.dumps({"batch": 0, "rows": 16, "ms": {"walCommit": 9}}) + "\n")
    args = SimpleNamespace(out=tmp_path)
    assert timeline.report(args, lines, samples, cmd, sent, progress) == 0
    out = capsys.readouterr().out
    assert "steady: 16.0 images/s (16 images in 1.00 s, 1 micro-batches after the first)" in out
    assert "python worker" in out and "50.00" in out  # 0.8 CPU s / 16 images
    assert "producer" in out and "25.00" in out
    assert "first prediction 0.50 s" in out
    assert (tmp_path / "timeline.png").stat().st_size > 0
    assert json.loads((tmp_path / "timeline.json").read_text())["progress"][0]["ms"] == {"walCommit": 9}


def test_report_needs_two_micro_batches(tmp_path, capsys):
    lines = [(10.0, "batch seq=    0 images=     8"), (10.004, "batch seq=    1 images=    16")]
    assert timeline.report(SimpleNamespace(out=tmp_path), lines, [(10.0, {}, (0, 0))], {}, "", tmp_path / "none") == 1
    assert "fewer than two micro-batches" in capsys.readouterr().out
