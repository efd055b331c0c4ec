"""The synthetic dataset: layout, variety, determinism, learnability, loud labelling."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from producer import dataset, imaging, synthetic
from producer.launch import tree_env



@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synthetic.generate(root, per_class=12, progress=False)
    return root


def digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_matches_the_real_dataset(synth):
    counts = dataset.describe(synth)
    assert counts["train"] == dict.fromkeys(synthetic.CLASS_FOLDERS, 12)
    assert counts["valid"] == dict.fromkeys(synthetic.CLASS_FOLDERS, 3)
    assert counts["test"] == dict.fromkeys(synthetic.CLASS_FOLDERS, 6)
    train_folders = sorted(p.name for p in (synth / "train").iterdir())
    test_folders = sorted(p.name for p in (synth / "test").iterdir())
    assert sum("_" in name for name in train_folders) == 3  # suffixed like the real train set
    assert test_folders == sorted(synthetic.CLASS_FOLDERS)
    assert dataset.class_names(synth) == test_folders


def test_images_vary_in_mode_depth_format_and_size(synth):
    kinds, sizes = set(), set()
    for path in (p for p in (synth / "train").rglob("*") if p.is_file()):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        channels = 1 if image.ndim == 2 else image.shape[2]
        kinds.add((path.suffix, channels, image.dtype.name))
        sizes.add(image.shape[:2])
    assert {(".png", 1, "uint8"), (".png", 3, "uint8"), (".png", 4, "uint8"), (".png", 1, "uint16"),
            (".jpg", 3, "uint8")} <= kinds
    assert len(sizes) >= 3


def test_generation_is_deterministic(tmp_path):
    synthetic.generate(tmp_path / "a", per_class=2, progress=False)
    synthetic.generate(tmp_path / "b", per_class=2, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    synthetic.generate(tmp_path / "c", per_class=2, seed=1, progress=False)
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_classes_are_learnable(synth):
    """A plain logistic regression on 32x32 pixels beats chance (0.25) by far on the test split."""
    from sklearn.linear_model import LogisticRegression

    prep = imaging.Preprocessing(image_size=(32, 32))

    def load(split):
        _, files = dataset.list_images(synth, split)
        x = np.stack([imaging.load(f.path, prep).ravel() for f in files]).astype(np.float32) / 255
        return x, np.array([f.label for f in files])

    x_train, y_train = load("train")
    x_test, y_test = load("test")
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    accuracy = (model.predict(x_test) == y_test).mean()
    assert accuracy >= 0.75, accuracy


def test_refuses_to_write_into_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        synthetic.generate(tmp_path, per_class=1, progress=False)
    with pytest.raises(ValueError, match="per_class"):
        synthetic.generate(tmp_path / "new", per_class=0, progress=False)
    synthetic.generate(tmp_path / "again", per_class=1, progress=False)
    synthetic.generate(tmp_path / "again", per_class=1, progress=False)  # a synthetic set may be rewritten


def test_command_line_says_loudly_that_it_is_synthetic(tmp_path):
    env = tree_env()
    out = subprocess.run([sys.executable, "-m", "producer.synthetic", str(tmp_path / "s"), "--per-class", "2",
                          "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SYNTHETIC" in out.stderr and "NOT for medicine" in out.stderr
    assert "train: 8 images" in out.stdout
    assert (tmp_path / "s" / synthetic.MARKER).read_text().startswith("#")
