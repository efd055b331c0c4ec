"""scripts/robustness.py end to end on a tiny synthetic dataset."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import robustness  # noqa: E402


@pytest.fixture
def tiny(synthetic_dataset) -> Path:
    return synthetic_dataset(4)


def test_runs_end_to_end_and_reports_every_perturbation(tiny, tmp_path):
    out, report = tmp_path / "rendered", tmp_path / "report.json"
    assert robustness.main(["--data", str(tiny), "--out", str(out), "--cache", str(tmp_path / "cache"),
                            "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert set(result["perturbations"]) == set(robustness.PERTURBATIONS)
    for name, row in result["perturbations"].items():
        assert 0.0 <= row["macro_f1"] <= 1.0
        assert row["drop"] == pytest.approx(result["unperturbed"]["macro_f1"] - row["macro_f1"])
    assert result["worst_drop"] == max(r["drop"] for r in result["perturbations"].values())
    # Same layout as the dataset: <perturbation>/test/<class folder>/<image>, one file per test image.
    test_files = sorted(p.relative_to(tiny / "test").with_suffix("")
                        for p in (tiny / "test").rglob("*") if p.is_file() and p.suffix in (".png", ".jpg"))
    for name in robustness.PERTURBATIONS:
        rendered = sorted(p.relative_to(out / name / "test").with_suffix("")
                          for p in (out / name / "test").rglob("*") if p.is_file())
        assert rendered == test_files, name
    assert all(p.suffix == ".jpg" for p in (out / "jpeg").rglob("*") if p.is_file())


def test_rendering_is_seeded_and_changes_the_pixels(tiny, tmp_path):
    source = next(p for p in sorted((tiny / "test").rglob("*.png")))
    original = robustness.picture(source)
    for name in robustness.PERTURBATIONS:
        a = robustness.render(source, tmp_path / "a" / name / "x", name, np.random.default_rng(3))
        b = robustness.render(source, tmp_path / "b" / name / "x", name, np.random.default_rng(3))
        assert a.read_bytes() == b.read_bytes(), name
        pixels = cv2.imread(str(a), cv2.IMREAD_UNCHANGED)
        assert pixels.shape[:2] == original.shape[:2], name
        assert not np.array_equal(pixels, original), name


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        robustness.parse_args(["--data", str(tmp_path)])
    assert "--data" in capsys.readouterr().err
