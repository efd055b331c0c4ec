"""Dataset layout: class names, labels, ids, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from producer import dataset


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.mark.realdata
def test_real_dataset_labels_are_normalized(real_data):
    counts = {split: len(dataset.list_images(real_data, split)[1]) for split in dataset.SPLITS}
    assert counts == {"train": 613, "valid": 72, "test": 315}
    class_lists = {split: dataset.list_images(real_data, split)[0] for split in dataset.SPLITS}
    assert len(class_lists["train"]) == 4
    assert class_lists["train"] == class_lists["valid"] == class_lists["test"]
    assert all("_" not in name for name in class_lists["train"])
    for split in dataset.SPLITS:
        classes, files = dataset.list_images(real_data, split)
        assert {f.label for f in files} == set(range(4))  # every class present in every split
        for f in files:
            folder = f.id.split("/")[0]
            assert classes[f.label] == dataset.class_name(folder)
            assert (real_data / split / f.id) == f.path
    # the suffixed train folders and the plain test folders meet on the same names
    train_folders = {p.name for p in (real_data / "train").iterdir() if p.is_dir()}
    test_folders = {p.name for p in (real_data / "test").iterdir() if p.is_dir()}
    assert train_folders != test_folders
    assert {dataset.class_name(n) for n in train_folders} == test_folders


def test_class_name_is_the_folder_name_up_to_the_first_underscore():
    assert dataset.class_name("adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib") == "adenocarcinoma"
    assert dataset.class_name("large.cell.carcinoma") == "large.cell.carcinoma"
    assert dataset.class_name("normal") == "normal"


def test_indices_come_from_every_split_so_all_splits_agree(tmp_path):
    touch(tmp_path, "train/b_x/1.png", "train/c_y/1.png", "test/a/1.png", "test/b/2.png")
    train_classes, train = dataset.list_images(tmp_path, "train")
    test_classes, test = dataset.list_images(tmp_path, "test")
    assert train_classes == test_classes == ["a", "b", "c"]
    assert [(f.id, f.label) for f in train] == [("b_x/1.png", 1), ("c_y/1.png", 2)]
    assert [(f.id, f.label) for f in test] == [("a/1.png", 0), ("b/2.png", 1)]


def test_extensions_nesting_and_ignored_files(tmp_path):
    touch(tmp_path, "train/a/1.PNG", "train/a/2.jpeg", "train/a/3.Jpg", "train/a/deeper/4.png",
          "train/a/notes.txt", "train/a/.hidden.png", "train/a/img.gif", "train/.cache/5.png",
          "train/README.png")
    _, files = dataset.list_images(tmp_path, "train")
    assert [f.id for f in files] == ["a/1.PNG", "a/2.jpeg", "a/3.Jpg", "a/deeper/4.png"]
    assert all(f.size == 1 and f.mtime_ns > 0 for f in files)


def test_dev_is_valid(tmp_path):
    touch(tmp_path, "valid/a/1.png")
    assert dataset.split_folder("dev") == "valid"
    assert dataset.list_images(tmp_path, "dev")[1] == dataset.list_images(tmp_path, "valid")[1]


@pytest.mark.parametrize("setup, split, match", [
    ((), "train", "does not exist"),
    (("train/a/1.png",), "test", "split folder .* does not exist"),
    (("train/a/notes.txt", "train/b/"), "train", "no images"),
    (("train/a/1.png",), "holdout", "unknown split"),
    (("train/readme.png",), "train", "no class folders"),
])
def test_errors_are_clear(tmp_path, setup, split, match):
    root = tmp_path / "data"
    for rel in setup:
        if rel.endswith("/"):
            (root / rel).mkdir(parents=True, exist_ok=True)
        else:
            touch(root, rel)
    with pytest.raises(dataset.DatasetError, match=match):
        dataset.list_images(root, split)


def test_describe_counts_per_class(tmp_path):
    touch(tmp_path, "train/a_1/1.png", "train/a_1/2.png", "train/b/1.png", "test/a/1.png")
    assert dataset.describe(tmp_path) == {"train": {"a": 2, "b": 1}, "test": {"a": 1, "b": 0}}
