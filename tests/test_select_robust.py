"""Stage 8 of scripts/select_model.py: augmented training rows, the tolerant-LBP prototype, the table."""
from __future__ import annotations

import sys
from pathlib import Path

import featrs
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import lbp_tolerance  # noqa: E402
import select_model as sm  # noqa: E402
import select_robust  # noqa: E402


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(120, 30, (61, 70)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("P, R", [(8, 1), (16, 2), (24, 3), (24, 8)])
def test_tolerance_zero_is_featrs_lbp(picture, P, R):
    expected = featrs.local_binary_pattern(picture, P, R, "uniform").astype(np.int64)
    np.testing.assert_array_equal(lbp_tolerance.uniform_codes(picture, P, R, [0])[0], expected)


def test_histograms_are_laid_out_as_featrs_grid(picture):
    expected = featrs.lbp_histogram_grid_batch(picture[None], (8, 16), (1, 2), "uniform", 3)
    got = lbp_tolerance.histogram_grid_batch(picture[None], (8, 16), (1, 2), 3, [0])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    both = lbp_tolerance.histogram_grid_batch(picture[None], (8, 16), (1, 2), 3, [0, 4])
    assert both.shape == (1, 2 * expected.shape[1])
    np.testing.assert_allclose(both[:, :expected.shape[1]], expected, atol=1e-6)


def test_a_tolerance_keeps_codes_of_a_smooth_picture_under_noise():
    # A smooth ramp plus noise of 1.5 levels: skimage's rule flips nearly every code; with a
    # tolerance of 4 levels (about twice the noise of a difference) few codes change.
    rows, cols = np.mgrid[0:64, 0:64]
    smooth = (60 + rows + 0.5 * cols).astype(np.float64)
    noisy = smooth + np.random.default_rng(0).normal(0, 1.5, smooth.shape)
    changed = {t: np.mean(lbp_tolerance.uniform_codes(smooth, 8, 1, [t])[0]
                          != lbp_tolerance.uniform_codes(noisy, 8, 1, [t])[0]) for t in (0, 4)}
    assert changed[0] > 0.3
    assert changed[4] < 0.2 * changed[0]


@pytest.mark.parametrize("args, match", [
    (dict(P=1, R=1.0, tolerances=[0]), "P >= 2"),
    (dict(P=8, R=0.0, tolerances=[0]), "R > 0"),
    (dict(P=8, R=1.0, tolerances=[-1]), ">= 0"),
    (dict(P=8, R=1.0, tolerances=[]), "non-empty"),
])
def test_bad_prototype_options_are_refused(picture, args, match):
    with pytest.raises(ValueError, match=match):
        lbp_tolerance.uniform_codes(picture, **args)


def test_augmented_copies_join_only_their_own_training_rows():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    copy = X + 100
    y = np.array([0, 1, 2, 0, 1, 2])
    rows = np.array([1, 4])
    Xt, yt = sm.training_rows(X, y, rows, [copy])
    np.testing.assert_array_equal(Xt, np.vstack([X[rows], copy[rows]]))
    np.testing.assert_array_equal(yt, [1, 1, 1, 1])
    Xt, yt = sm.training_rows(X, y, rows)
    np.testing.assert_array_equal(Xt, X[rows])


def test_a_missing_augmented_copy_is_an_error():
    X = np.zeros((3, 2), np.float32)
    copy = X.copy()
    copy[2] = np.nan  # e.g. a test-split row, which is never rendered
    with pytest.raises(ValueError, match="augmented copy is missing"):
        sm.training_rows(X, np.zeros(3), np.array([0, 2]), [copy])


@pytest.mark.parametrize("augment, match", [
    ((("all", sm.CV_PERTURBATION[1]),), "evaluation's seed"),
    ((("blur", 1),), "must be one of"),
    ((("all", 1), ("all", 1)), "repeat"),
])
def test_augmentation_draws_that_could_leak_are_refused(augment, match):
    with pytest.raises(ValueError, match=match):
        select_robust._check_seeds(augment)


def test_stage8_candidates_are_named_once_and_never_draw_the_evaluation_seed():
    stage = select_robust.stage8()
    names = [c.name for c in sm.candidates()]
    assert len(names) == len(set(names))
    assert {c.name for c in stage} <= set(names)
    for cand in stage:
        select_robust._check_seeds(cand.augment)
        assert cand.lbp_tolerance is None or cand.lbp_tolerance in select_robust.LBP_TOLERANCES


def test_the_table_has_a_column_and_a_drop_per_perturbation():
    row = {"name": "x", "dims": 3, "augment": [["all", 1]], "cv_macro_f1": 0.9, "cv_macro_f1_std": 0.01,
           "cv_perturbed": {"noise": 0.88, "all": 0.85}, "valid_macro_f1": 0.8}
    text = sm.markdown([row, {**row, "name": "y", "augment": [], "cv_perturbed": {"noise": 0.7, "all": 0.6}}])
    lines = text.splitlines()
    assert "drop noise" in lines[0] and "drop all" in lines[0] and "worst drop" in lines[0]
    assert lines[2].startswith("| x |")  # the smaller worst drop first
    assert "| 0.020 | 0.050 | 0.050 |" in lines[2]
    assert "all (seed 1)" in lines[2] and "| none |" in lines[3]


def test_the_chosen_augmentation_is_what_the_producer_streams_by_default():
    from producer import augment

    assert [name for name, _ in sm.CHOSEN.augment] == list(augment.COPY_PERTURBATIONS)
    assert len(sm.CHOSEN.augment) == augment.DEFAULT_TRAIN_COPIES
    select_robust._check_seeds(sm.CHOSEN.augment)


def test_fit_chosen_refuses_missing_augmented_copies():
    ds = sm.Dataset(np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 0, 1]), np.array(["train"] * 4),
                    np.array(list("abcd")), ["a", "b"])
    with pytest.raises(ValueError, match="augmented copies"):
        sm.fit_chosen(ds, np.zeros((4, 3), np.float32), sm.CHOSEN, augment=None)
