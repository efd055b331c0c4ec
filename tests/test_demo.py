"""`make demo`'s script: the synthetic fallback (in-process, no Spark), and the script end to end
on the real data (tests/test_defaults_real.py: the default path's accuracy)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from consumer.learn import versions

ROOT = Path(__file__).resolve().parents[1]


def load_demo():
    spec = importlib.util.spec_from_file_location("chestct_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name ``text`` (the demo's output folder)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if text in cmd:
            found.append(cmd)
    return found


def run_demo(out: Path, *args: str) -> str:
    """``scripts/demo.py --out OUT ARGS`` as ``make demo`` runs it; its console output."""
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def check_demo_output(out: Path) -> dict:
    """What every demo leaves: a report, its plots, a model; and no process of its own."""
    report = json.loads((out / "report.json").read_text())
    assert report["n_images"] > 0
    assert set(report) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
                           "confusion_matrix", "classes", "n_images"}
    assert sum(map(sum, report["confusion_matrix"])) == report["n_images"]
    for png in ("confusion_matrix.png", "accuracy_over_batches.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (versions.resolve(out / "model") / "model.json").is_file()
    # Every producer and consumer the demo started (all name the output folder) is gone.
    assert processes_mentioning(str(out)) == []
    return report


def test_without_data_the_demo_says_so_loudly_and_runs_both_stages_on_a_synthetic_set(tmp_path, monkeypatch,
                                                                                     capsys):
    demo = load_demo()
    stages = []

    def run_stage(procs, split, consumer_args, data):
        stages.append((split, consumer_args[0], data))
        if consumer_args[0] == "predict":
            report = Path(consumer_args[consumer_args.index("--report") + 1])
            report.write_text(json.dumps({"accuracy": 0.5, "macro_f1": 0.5, "n_images": 8}))

    monkeypatch.setattr(demo, "run_stage", run_stage)
    monkeypatch.delenv("CHESTCT_DATA", raising=False)
    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "nothing about medicine" in out
    data = tmp_path / "synthetic-data"
    assert [s[:2] for s in stages] == [("train", "train"), ("test", "predict")]
    assert all(s[2] == data for s in stages)
    assert {p.name for p in data.iterdir()} >= {"train", "valid", "test"}
    assert any((data / "test").rglob("*.png"))


def test_data_without_the_splits_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no train/ and test/"):
        load_demo().main(["--data", str(tmp_path), "--out", str(tmp_path / "out")])
