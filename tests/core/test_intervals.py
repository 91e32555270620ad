"""Bootstrap intervals, calibration and top-k: on hand-made and simulated predictions (no Keras)."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from cnn_tui.core.models.temperature import scaled
from cnn_tui.core.training import calibration, intervals
from cnn_tui.core.training.evaluation import Evaluation
from cnn_tui.core.training.uncertainty import assess, top_k_accuracy


def simulated(n, classes=4, accuracy=0.85, seed=0):
    """Predictions right with probability ``accuracy``, with softmax-like probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    right = rng.random(n) < accuracy
    predicted = np.where(right, y, (y + rng.integers(1, classes, n)) % classes)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), predicted] = logits.max(axis=1) + rng.exponential(2.0, n)  # argmax = predicted
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_intervals_hold_the_point_estimates_scikit_learn_reports():
    y, p = simulated(400)
    found = intervals.bootstrap(y, p, resamples=500)
    pred = p.argmax(axis=1)
    assert found.accuracy.value == pytest.approx((pred == y).mean())
    assert found.macro_f1.value == pytest.approx(f1_score(y, pred, average="macro"))
    assert found.roc_auc.value == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    precision, recall = precision_score(y, pred, average=None), recall_score(y, pred, average=None)
    for k in range(4):
        assert found.precision[k].value == pytest.approx(precision[k])
        assert found.recall[k].value == pytest.approx(recall[k])
    for interval in (found.accuracy, found.macro_f1, found.roc_auc, *found.precision, *found.recall):
        assert interval.low <= interval.value <= interval.high
        assert interval.high - interval.low > 0.005  # 400 images: not a point
    assert 0.03 < found.accuracy.high - found.accuracy.low < 0.1  # about ±1.96·sqrt(.85·.15/400) = ±3.5 points


def test_intervals_shrink_as_the_test_set_grows_and_repeat_with_the_seed():
    widths = []
    for n in (100, 1000, 10000):
        y, p = simulated(n, seed=n)
        found = intervals.bootstrap(y, p, resamples=400)
        widths.append(found.accuracy.high - found.accuracy.low)
    assert widths[0] > 2 * widths[1] > 4 * widths[2]  # about 1/sqrt(n)
    y, p = simulated(300)
    assert intervals.bootstrap(y, p, seed=7) == intervals.bootstrap(y, p, seed=7)
    assert intervals.bootstrap(y, p, seed=7) != intervals.bootstrap(y, p, seed=8)


def test_auc_of_weighted_images_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200) * 0.7 + 0.3 * y, 1)  # rounded: many ties
    weights = rng.integers(0, 4, (3, 200))
    column = intervals.RankedScores(score, y == 1)
    for row, got in zip(weights, column.auc(weights)):
        assert got == pytest.approx(roc_auc_score(y, score, sample_weight=row))


def test_an_undefined_auc_is_none():
    y, p = simulated(50, classes=3)
    y[y == 2] = 0  # a class missing from the test set
    assert intervals.bootstrap(y, p, resamples=50).roc_auc is None


def test_the_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    """Draw many test sets of a model whose accuracy is known: the intervals must hold it ~95 %."""
    truth, n, trials = 0.9, 300, 200
    held = 0
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        y = rng.integers(0, 2, n)
        right = rng.random(n) < truth
        p = np.full((n, 2), 0.2)
        p[np.arange(n), np.where(right, y, 1 - y)] = 0.8
        held += intervals.bootstrap(y, p, resamples=400, auc=False, seed=seed).accuracy.contains(truth)
    assert 0.89 <= held / trials <= 0.99  # binomial spread of 200 trials around 0.95: ±3 points


def test_paired_difference_of_two_runs():
    rng = np.random.default_rng(5)
    a = rng.random(500) < 0.9
    b = a.copy()
    b[:2] = ~b[:2]  # two images differ: within noise
    near = intervals.paired_difference(a, b)
    assert near.within_noise and near.only_a + near.only_b == 2
    worse = a & (rng.random(500) < 0.8)  # B loses a fifth of A's right answers
    far = intervals.paired_difference(a, worse)
    assert not far.within_noise and far.difference.low > 0
    assert far.difference.value == pytest.approx(a.mean() - worse.mean())


def test_within_the_folds_spread_of_the_best():
    means, stds = [0.95, 0.94, 0.90, math.nan], [0.01, 0.005, 0.01, math.nan]
    assert intervals.within_spread_of_best(means, stds) == [True, True, False, False]
    assert intervals.within_spread_of_best([], []) == []


def test_expected_calibration_error_by_hand():
    # two bins used: 0.9 confidence right half the time, 0.6 confidence always right
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert calibration.expected_calibration_error(p, y) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    bins = [b for b in calibration.reliability(p, y) if b.images]
    assert [(b.images, round(b.confidence, 3), b.accuracy) for b in bins] == [(2, 0.6, 1.0), (2, 0.9, 0.5)]


def test_temperature_scaling_calms_an_over_confident_model_and_keeps_its_argmax():
    rng = np.random.default_rng(11)
    n, classes = 2000, 5
    y = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), y] += 1.5  # right about 60 % of the time ...
    p = scaled(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 0.25)  # ... and 4× too sure
    fit, check = slice(0, 1000), slice(1000, None)
    temperature = calibration.fit_temperature(p[fit], y[fit])
    assert 2.0 < temperature < 6.0  # about the 4 it was sharpened by
    calibrated = scaled(p[check], temperature)
    before = calibration.expected_calibration_error(p[check], y[check])
    after = calibration.expected_calibration_error(calibrated, y[check])
    assert before > 0.2 and after < before / 3
    np.testing.assert_array_equal(calibrated.argmax(axis=1), p[check].argmax(axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(scaled(calibrated, 1 / temperature), p[check], atol=1e-5)  # undone exactly


def test_a_calibrated_model_is_left_alone():
    y, p = simulated(500)
    assert scaled(p, 1.0) is p
    assert calibration.fit_temperature(p[:0], y[:0]) == 1.0


def test_top_k_accuracy_by_hand():
    p = np.array([[0.5, 0.3, 0.1, 0.05, 0.05],   # true 1: second
                  [0.1, 0.2, 0.3, 0.4, 0.0],     # true 0: fourth
                  [0.2, 0.2, 0.5, 0.05, 0.05]])  # true 2: first
    y = np.array([1, 0, 2])
    assert top_k_accuracy(y, p, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(y, p, 3) == pytest.approx(2 / 3)
    assert top_k_accuracy(y, p, 4) == pytest.approx(1.0)


def test_assess_an_evaluation():
    y, p = simulated(200, classes=6)
    ev = Evaluation([str(i) for i in range(6)], y, p.astype(np.float32), [f"f{i}" for i in range(200)], 0.0)
    trust = assess(ev)
    assert set(trust.top_k) == {3, 5} and trust.top_k[3] >= ev.accuracy
    assert trust.ece_before is None and trust.temperature == 1.0
    body = trust.as_dict(ev.class_names)
    assert body["intervals"]["accuracy"]["value"] == pytest.approx(ev.accuracy)
    assert body["top3_accuracy"] == trust.top_k[3] and len(body["intervals"]["per_class"]) == 6
    three = Evaluation(["a", "b", "c"], y % 3, p[:, :3] / p[:, :3].sum(1, keepdims=True), ev.files, 0.0,
                       temperature=2.0)
    assert assess(three).top_k == {} and assess(three).ece_before is not None


def test_a_search_table_marks_only_rows_scored_like_the_best():
    from cnn_tui.core.tuning.search import near_best

    row = {"rung": 2, "folds": 3, "std_accuracy": 0.01}
    table = [{**row, "mean_accuracy": 0.95}, {**row, "mean_accuracy": 0.94},
             {**row, "mean_accuracy": 0.96, "rung": 1},  # an earlier round of hyperband: fewer epochs
             {**row, "mean_accuracy": 0.95, "folds": 2}, {**row, "mean_accuracy": 0.80}]
    assert near_best(table) == [True, True, False, False, False]
    assert near_best([]) == []
