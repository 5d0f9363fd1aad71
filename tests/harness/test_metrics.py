"""The competition metric and its companions: hand-computed cases, scikit-learn, bootstrap."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from harness.metrics import (
    binary_roc_auc,
    bootstrap_macro_auc,
    bootstrap_macro_auc_difference,
    group_macro_roc_auc,
    macro_roc_auc,
    padded_cmap,
    per_class_roc_auc,
)

# Four windows, four classes: an ordinary class, a class with a tied score, a class with no
# positive window and a class whose every window is positive.
HAND_LABELS = np.array([
    [1, 0, 0, 1],
    [0, 1, 0, 1],
    [1, 0, 0, 1],
    [0, 1, 0, 1],
])
HAND_SCORES = np.array([
    [0.9, 0.5, 0.3, 0.2],
    [0.1, 0.5, 0.7, 0.4],
    [0.4, 0.2, 0.1, 0.6],
    [0.6, 0.8, 0.9, 0.8],
])


def test_hand_computed_class_aucs():
    aucs = per_class_roc_auc(HAND_LABELS, HAND_SCORES)
    # class 0: positives {0.9, 0.4} beat negatives {0.1, 0.6} in 3 of 4 pairs
    assert aucs[0] == 0.75
    # class 1: positives {0.5, 0.8} vs negatives {0.5, 0.2}; the tie counts one half
    assert aucs[1] == 0.875
    assert math.isnan(aucs[2])
    assert math.isnan(aucs[3])


def test_hand_computed_macro_auc():
    assert macro_roc_auc(HAND_LABELS, HAND_SCORES) == (0.75 + 0.875) / 2


def test_class_without_positives_is_skipped():
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.9], [0.1, 0.1], [0.8, 0.8], [0.2, 0.2]])
    value = macro_roc_auc(labels, scores)
    assert not math.isnan(value)
    assert value == 1.0


def test_no_defined_class_gives_nan():
    labels = np.array([[0, 1], [0, 1]])
    assert math.isnan(macro_roc_auc(labels, np.array([[0.2, 0.3], [0.4, 0.5]])))


def test_matches_sklearn_on_two_label_classes():
    rng = np.random.default_rng(7)
    labels = (rng.random((300, 40)) < 0.15).astype(int)
    labels[:, 3] = 0  # no positive window
    labels[:, 5] = 1  # no negative window
    # Rounded scores create many ties, the case where AUC definitions usually part ways.
    scores = np.round(rng.random((300, 40)), 2)
    ours = per_class_roc_auc(labels, scores)
    both = [c for c in range(40) if 0 < labels[:, c].sum() < len(labels)]
    assert 3 not in both
    assert 5 not in both
    reference = np.array([roc_auc_score(labels[:, c], scores[:, c]) for c in both])
    np.testing.assert_allclose(ours[both], reference, rtol=0, atol=1e-12)
    assert abs(macro_roc_auc(labels, scores) - reference.mean()) <= 1e-12
    assert abs(macro_roc_auc(labels, scores) - roc_auc_score(labels[:, both], scores[:, both], average="macro")) <= 1e-12


def test_binary_auc_is_nan_for_one_label_column():
    assert math.isnan(binary_roc_auc(np.ones(4), np.arange(4.0)))
    assert math.isnan(binary_roc_auc(np.zeros(4), np.arange(4.0)))


def test_group_macro_auc_per_taxon():
    groups = ["Aves", "Amphibia", "Aves", "Insecta"]
    result = group_macro_roc_auc(HAND_LABELS, HAND_SCORES, groups)
    assert result["Aves"] == 0.75
    assert result["Amphibia"] == 0.875
    assert math.isnan(result["Insecta"])


def test_group_names_must_cover_every_class():
    with pytest.raises(ValueError, match="3 group names for 4 classes"):
        group_macro_roc_auc(HAND_LABELS, HAND_SCORES, ["Aves", "Aves", "Aves"])


def test_padded_cmap_hand_computed():
    labels = np.array([[1, 0], [0, 1]])
    scores = np.array([[0.8, 0.8], [0.3, 0.3]])
    # class 0 ranks its positive first: AP 1. class 1 after padding with one row of ones:
    # positives at ranks 1 and 3, AP = 0.5 * 1 + 0.5 * 2/3.
    assert padded_cmap(labels, scores, padding=1) == pytest.approx((1 + (0.5 + 1 / 3)) / 2, abs=1e-15)


def test_padded_cmap_matches_sklearn():
    rng = np.random.default_rng(3)
    labels = (rng.random((50, 12)) < 0.2).astype(int)
    labels[:, 0] = 0
    scores = np.round(rng.random((50, 12)), 1)
    padded_labels = np.vstack([labels, np.ones((5, 12))])
    padded_scores = np.vstack([scores, np.ones((5, 12))])
    reference = average_precision_score(padded_labels, padded_scores, average="macro")
    assert abs(padded_cmap(labels, scores) - reference) <= 1e-12


def test_soft_labels_are_rejected():
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        macro_roc_auc(np.array([[0.5, 1.0], [0.0, 0.0]]), np.array([[0.1, 0.2], [0.3, 0.4]]))


def test_nonfinite_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN or Inf"):
        macro_roc_auc(HAND_LABELS, np.where(HAND_SCORES > 0.85, np.nan, HAND_SCORES))


def test_bootstrap_of_one_file_has_zero_width():
    interval = bootstrap_macro_auc(HAND_LABELS, HAND_SCORES, ["a.ogg"] * 4, resamples=50)
    assert interval.estimate == 0.8125
    assert interval.low == interval.high == 0.8125
    assert interval.std == 0.0
    assert interval.resamples == 50


def test_bootstrap_resamples_whole_files():
    rng = np.random.default_rng(0)
    labels = (rng.random((60, 6)) < 0.3).astype(int)
    scores = rng.random((60, 6))
    files = [f"file{i // 12}" for i in range(60)]
    interval = bootstrap_macro_auc(labels, scores, files, resamples=200, seed=1)
    again = bootstrap_macro_auc(labels, scores, files, resamples=200, seed=1)
    assert interval == again
    assert interval.low < interval.estimate < interval.high
    assert interval.std > 0


def test_bootstrap_needs_a_file_per_window():
    with pytest.raises(ValueError, match="3 file names for 4 windows"):
        bootstrap_macro_auc(HAND_LABELS, HAND_SCORES, ["a", "a", "b"])


def test_paired_difference_of_equal_scores_is_zero():
    files = ["a", "a", "b", "b"]
    interval = bootstrap_macro_auc_difference(HAND_LABELS, HAND_SCORES, HAND_SCORES, files, resamples=100)
    assert interval.estimate == 0.0
    assert interval.std == 0.0


def test_paired_difference_sign_follows_the_candidate():
    rng = np.random.default_rng(2)
    labels = (rng.random((80, 5)) < 0.3).astype(int)
    noise = rng.random((80, 5))
    better = 0.5 * labels + 0.5 * noise
    files = [f"f{i // 8}" for i in range(80)]
    interval = bootstrap_macro_auc_difference(labels, noise, better, files, resamples=200)
    assert interval.estimate == pytest.approx(macro_roc_auc(labels, better) - macro_roc_auc(labels, noise))
    assert interval.estimate > 0
    assert interval.low > 0
