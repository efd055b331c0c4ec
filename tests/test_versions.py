"""Model versions: immutable folders, an atomic LATEST, crash leftovers never visible, follow."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from consumer.evaluate.follower import ModelFollower
from consumer.evaluate.predicting import StreamPredictor
from consumer.features import FeatureConfig, n_features
from consumer.learn import versions
from consumer.learn.fit import fit
from consumer.learn.incremental import IncrementalTrainer
from consumer.learn.model import TrainedModel
from consumer.learn.publisher import Publisher

CLASSES = ["a", "b", "c", "d"]
CONFIG = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
WIDTH = n_features(CONFIG, (32, 32))


def _model(seed: int = 0, model: str = "sgd") -> TrainedModel:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(40)], "label": np.arange(40) % 4, "seq": 0,
                          "features": list(rng.random((40, WIDTH), dtype=np.float32))})
    return fit(table, config=CONFIG, model=model, classes=CLASSES, image_shape=[32, 32, 1],
               color_mode="grayscale")


def test_versions_appear_in_order_and_latest_names_the_newest(tmp_path):
    save = tmp_path / "m"
    assert versions.latest(save) is None and versions.published(save) == []
    with pytest.raises(versions.NoModel, match="holds no model"):
        versions.resolve(save)
    assert versions.publish(save, _model(0).save) == "000001"
    assert versions.publish(save, _model(1).save) == "000002"
    assert versions.published(save) == ["000001", "000002"]
    assert versions.latest(save) == "000002"
    assert versions.resolve(save) == save / "versions" / "000002"
    assert TrainedModel.load(versions.resolve(save)).meta["model"] == "sgd"


def test_a_crash_while_publishing_leaves_only_whole_versions(tmp_path):
    save = tmp_path / "m"
    versions.publish(save, _model(0).save)

    def crash(folder):
        _model(1).save(folder)
        (folder / "estimator.skops").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        versions.publish(save, crash)
    assert versions.published(save) == ["000001"] and versions.latest(save) == "000001"
    # A killed process's incoming folder is cleared by the next publish, never listed.
    dead = save / "versions" / ".incoming-000002-999999999"
    dead.mkdir()
    assert versions.publish(save, _model(2).save) == "000002"
    assert not dead.exists() and versions.published(save) == ["000001", "000002"]
    assert not list((save / "versions").glob(f".incoming-*-{os.getpid()}"))


def test_an_old_single_model_dir_still_loads_and_is_not_published_into(tmp_path):
    _model(0).save(tmp_path / "old")
    assert versions.resolve(tmp_path / "old") == tmp_path / "old"
    with pytest.raises(ValueError, match="older chestct"):
        versions.publish(tmp_path / "old", _model(1).save)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        versions.publish(tmp_path / "other", _model(1).save)


def test_a_pointer_to_a_missing_version_is_refused(tmp_path):
    save = tmp_path / "m"
    versions.publish(save, _model(0).save)
    (save / "LATEST").write_text("000007\n")
    with pytest.raises(versions.NoModel, match="000007"):
        versions.latest(save)


def test_publisher_records_lineage_and_resumes_an_sgd_trainer(tmp_path):
    save = tmp_path / "m"
    trainer = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=(32, 32),
                                 color_mode="grayscale")
    rng = np.random.default_rng(3)
    for _ in range(3):
        trainer.partial_fit(rng.random((8, WIDTH), dtype=np.float32), np.arange(8) % 4)
    publisher = Publisher(save, every=16, describe={"preprocessing": {"interpolation": "area"}})
    assert publisher.due(trainer)
    first = publisher.publish(trainer.finish(), images_seen=trainer.n_images, seq_last=2,
                              prequential={"n_images": 16, "accuracy": 0.5, "macro_f1": 0.4})
    trainer.partial_fit(rng.random((8, WIDTH), dtype=np.float32), np.arange(8) % 4)
    assert not publisher.due(trainer)
    second = publisher.publish(trainer.finish(), images_seen=trainer.n_images, seq_last=3, prequential=None)
    meta = TrainedModel.load(versions.resolve(save)).meta
    assert (first, second) == ("000001", "000002")
    assert meta["version"]["parent"] == "000001" and meta["version"]["images_seen"] == 32
    assert meta["version"]["seq_last"] == 3 and meta["preprocessing"] == {"interpolation": "area"}
    restarted = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=(32, 32),
                                   color_mode="grayscale")
    again = Publisher(save, every=16, describe={})
    assert again.resume(restarted, lambda seq, n: None) == 4
    assert restarted.n_images == 32 and again.parent == "000002"
    X = rng.random((5, WIDTH), dtype=np.float32)
    np.testing.assert_array_equal(restarted.model.predict(X), TrainedModel.load(versions.resolve(save)).predict(X))


def test_a_crash_between_the_folder_and_the_pointer_resumes_from_the_newest_whole_version(tmp_path):
    """Killed after ``versions/000002`` appeared but before ``LATEST`` named it: the restart
    continues from 000002 (and points LATEST at it), so the lineage stays one line."""
    save = tmp_path / "m"
    trainer = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=(32, 32),
                                 color_mode="grayscale")
    rng = np.random.default_rng(4)
    publisher = Publisher(save, every=8, describe={})
    for seq in range(2):
        trainer.partial_fit(rng.random((8, WIDTH), dtype=np.float32), np.arange(8) % 4)
        publisher.publish(trainer.finish(), images_seen=trainer.n_images, seq_last=seq, prequential=None)
    (save / versions.POINTER_FILE).write_text("000001\n")  # the pointer switch never happened
    restarted = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=(32, 32),
                                   color_mode="grayscale")
    again = Publisher(save, every=8, describe={})
    assert again.resume(restarted, lambda seq, n: None) == 2
    assert again.parent == "000002" and restarted.n_images == 16
    assert versions.latest(save) == "000002"
    restarted.partial_fit(rng.random((8, WIDTH), dtype=np.float32), np.arange(8) % 4)
    third = again.publish(restarted.finish(), images_seen=restarted.n_images, seq_last=2, prequential=None)
    assert third == "000003"
    assert TrainedModel.load(save / "versions" / third).meta["version"]["parent"] == "000002"


def test_ctrl_c_during_a_publish_lands_after_it_so_the_next_version_names_it_as_parent(tmp_path):
    """Ctrl-C arriving while a version is written (seen in the continuous test: ``000005``
    named ``000003`` as parent) waits until the publish is whole and recorded, then raises."""
    import signal

    save = tmp_path / "m"
    trainer = IncrementalTrainer(config=CONFIG, model="sgd", classes=CLASSES, image_shape=(32, 32),
                                 color_mode="grayscale")
    rng = np.random.default_rng(5)
    trainer.partial_fit(rng.random((8, WIDTH), dtype=np.float32), np.arange(8) % 4)
    published = []
    publisher = Publisher(save, every=8, describe={}, on_publish=lambda folder, model: published.append(folder.name))
    model = trainer.finish()
    save_model = model.save

    def save_interrupted(folder, key=None):
        save_model(folder, key=key)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the version is being written

    model.save = save_interrupted
    with pytest.raises(KeyboardInterrupt):
        publisher.publish(model, images_seen=8, seq_last=0, prequential=None)
    del model.save
    assert published == ["000001"] and publisher.parent == "000001" and publisher.names == ["000001"]
    assert versions.latest(save) == "000001"
    second = publisher.publish(trainer.finish(), images_seen=8, seq_last=0, prequential=None)
    assert TrainedModel.load(save / "versions" / second).meta["version"]["parent"] == "000001"


def test_predict_follows_newer_versions_and_skips_unusable_ones(tmp_path):
    save = tmp_path / "m"
    versions.publish(save, _model(0).save)

    def accept(model):
        if model.meta["model"] != "sgd":
            raise ValueError("not for this stream")

    follower = ModelFollower(save, "000001", TrainedModel.load, accept)
    predictor = StreamPredictor(TrainedModel.load(versions.resolve(save)), emit=lambda line: None,
                                version="000001", follower=follower)
    assert not predictor.switch_if_newer(0)
    versions.publish(save, _model(1, model="rf").save)  # refused by accept: keep 000001
    assert not predictor.switch_if_newer(1) and predictor.version == "000001"
    versions.publish(save, _model(2).save)
    assert predictor.switch_if_newer(2) and predictor.version == "000003"
    rng = np.random.default_rng(4)
    rows = pd.DataFrame({"seq": [2, 2], "image_id": ["x", "y"], "label": [0, 1],
                         "features": [rng.random(WIDTH, dtype=np.float32) for _ in range(2)],
                         "sift": [None, None], "error": [None, None]})
    (entry,) = predictor.process(rows)
    assert entry["version"] == "000003"
    report = predictor.report()
    assert [s["version"] for s in report["model_versions"]] == ["000001", "000003"]
