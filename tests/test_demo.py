"""`make demo`'s script end to end on the synthetic dataset: train, predict, report, cleanup."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from consumer.learn import versions

ROOT = Path(__file__).resolve().parents[1]


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name ``text`` (the demo's output folder)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if text in cmd:
            found.append(cmd)
    return found


@pytest.mark.slow
@pytest.mark.spark
def test_demo_runs_end_to_end_on_synthetic_data(tmp_path):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    env.pop("CHESTCT_DATA", None)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "SYNTHETIC" in out  # the loud warning
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["n_images"] > 0
    assert set(report) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
                           "confusion_matrix", "classes", "n_images"}
    assert sum(map(sum, report["confusion_matrix"])) == report["n_images"]
    for png in ("confusion_matrix.png", "accuracy_over_batches.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (versions.resolve(tmp_path / "model") / "model.json").is_file()
    # Every producer and consumer the demo started (all name the output folder) is gone.
    assert _processes_mentioning(str(tmp_path)) == []
