"""predict's final report equals scikit-learn's metrics on the predictions it collected."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from consumer.features import FeatureConfig, n_features
from consumer.evaluate.predicting import StreamPredictor
from consumer.learn.fit import fit

CLASSES = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]


@pytest.mark.parametrize("model_name", ["sgd", "rf"])
def test_final_report_equals_sklearn_metrics_on_collected_predictions(model_name):
    config = FeatureConfig(features=("lbp",), lbp_P=(8,), lbp_R=(1.0,), lbp_grid=1)
    width = n_features(config, (32, 32))
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, 120)
    # Class-dependent features, noisy enough that predictions are neither all right nor all wrong.
    feats = (rng.normal(size=(120, width)) + labels[:, None] * 0.4).astype(np.float32)
    train = pd.DataFrame({"image_id": [f"t{i}" for i in range(80)], "label": labels[:80], "seq": 0,
                          "features": list(feats[:80])})
    model = fit(train, config=config, model=model_name, classes=CLASSES, image_shape=[32, 32, 1],
                color_mode="grayscale", seed=0)

    predictor = StreamPredictor(model, emit=lambda line: None)
    collected_true, collected_pred = [], []
    # 40 test images arrive as 5 producer batches spread over 3 Spark micro-batches.
    seqs = np.repeat(np.arange(5), 8)
    for micro in (slice(0, 16), slice(16, 24), slice(24, 40)):
        rows = pd.DataFrame({"seq": seqs[micro], "image_id": [f"x{i}" for i in range(40)][micro],
                             "label": labels[80:][micro], "features": list(feats[80:][micro]),
                             "sift": [None] * len(seqs[micro]), "error": [None] * len(seqs[micro])})
        predictor.process(rows)
        collected_true.extend(labels[80:][micro])
        collected_pred.extend(model.predict(feats[80:][micro], None))

    report = predictor.report()
    y, p = np.array(collected_true), np.array(collected_pred)
    assert 0 < (y == p).mean() < 1, "the check needs both right and wrong predictions"
    assert report["n_images"] == 40
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, p, labels=range(4), zero_division=0)
    assert report["macro_precision"] == pytest.approx(prec.mean())
    assert report["macro_recall"] == pytest.approx(rec.mean())
    assert report["macro_f1"] == pytest.approx(f1.mean())
    for i, name in enumerate(CLASSES):
        got = report["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((prec[i], rec[i], f1[i]))
        assert got["support"] == support[i]
    assert report["confusion_matrix"] == skm.confusion_matrix(y, p, labels=range(4)).tolist()
    assert [b["seq"] for b in report["batches"]] == list(range(5))
