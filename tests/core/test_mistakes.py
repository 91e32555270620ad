"""Error analysis from an evaluation's predictions: a confusion cell's images, top losses, most confused."""

import csv

import numpy as np
import pytest

from cnn_tui.core.inspect import mistakes, reports
from cnn_tui.core.inspect.reports import write_predictions
from cnn_tui.core.runs.results import load_evaluation
from cnn_tui.core.training.evaluation import Evaluation

NAMES = ["cat", "dog", "fox"]


def _evaluation(seed: int = 0, n: int = 60) -> Evaluation:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 2.5 * np.eye(3)[y_true]  # mostly right, some mistakes
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Evaluation(NAMES, y_true, probabilities.astype(np.float32), [f"img_{i}.png" for i in range(n)], 1.0)


def test_each_cell_lists_exactly_the_images_it_counts():
    ev = _evaluation()
    matrix = ev.confusion()
    assert matrix[~np.eye(3, dtype=bool)].sum() > 3  # the data has mistakes to find
    seen = []
    for true in range(3):
        for predicted in range(3):
            found = mistakes.cell(ev, true, predicted)
            assert len(found) == matrix[true, predicted]
            for e in found:
                assert (e.true, e.predicted) == (NAMES[true], NAMES[predicted])
                assert ev.y_true[e.index] == true and ev.y_pred[e.index] == predicted
                assert e.file == f"img_{e.index}.png"
                assert e.probability == pytest.approx(float(ev.probabilities[e.index, predicted]))
            assert [e.probability for e in found] == sorted((e.probability for e in found), reverse=True)
            seen += [e.index for e in found]
    assert sorted(seen) == list(range(ev.samples))  # every image in exactly one cell


def test_top_losses_are_the_mistakes_ordered_by_loss():
    ev = _evaluation(1)
    top = mistakes.top_losses(ev)
    wrong = np.flatnonzero(ev.y_pred != ev.y_true)
    assert sorted(e.index for e in top) == sorted(wrong.tolist())
    assert all(not e.correct for e in top)
    expected = -np.log(np.clip(ev.probabilities[np.arange(ev.samples), ev.y_true], 1e-7, 1))
    assert [e.loss for e in top] == pytest.approx(sorted(expected[wrong], reverse=True))
    assert [e.loss for e in top] == sorted((e.loss for e in top), reverse=True)
    assert len(mistakes.top_losses(ev, 2)) == 2
    everything = mistakes.top_losses(ev, wrong_only=False)
    assert len(everything) == ev.samples and everything[0].loss == pytest.approx(expected.max())
    first = top[0]  # its top classes: best first, the predicted class leading
    assert first.top[0][0] == first.predicted and len(first.top) == 3
    assert [p for _, p in first.top] == sorted((p for _, p in first.top), reverse=True)


def test_most_confused_counts_the_off_diagonal_cells():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 1, 0, 2, 0, 0, 0])
    probabilities = np.full((10, 3), 0.1, dtype=np.float32)
    probabilities[np.arange(10), y_pred] = 0.8
    ev = Evaluation(NAMES, y_true, probabilities, [f"f{i}" for i in range(10)], 0.0)
    pairs = mistakes.most_confused(ev)
    assert [(p.true, p.predicted, p.count) for p in pairs] == [
        ("fox", "cat", 3), ("cat", "dog", 2), ("cat", "fox", 1), ("dog", "cat", 1)]
    assert pairs[0].share == pytest.approx(3 / 4)
    assert mistakes.most_confused(ev, limit=1)[0].count == 3
    assert [p.count for p in mistakes.most_confused(ev, min_count=2)] == [3, 2]


def test_works_on_an_evaluation_read_back_from_predictions_npz(tmp_path):
    ev = _evaluation(2)
    write_predictions(ev, tmp_path / "predictions.npz")
    again = load_evaluation(tmp_path)
    assert [e.index for e in mistakes.top_losses(again)] == [e.index for e in mistakes.top_losses(ev)]
    assert [e.file for e in mistakes.cell(again, 1, 0)] == [e.file for e in mistakes.cell(ev, 1, 0)]


def test_misclassified_csv_has_the_loss_and_the_top_three(tmp_path):
    ev = _evaluation(3)
    path = reports.write_misclassified_csv(ev, tmp_path / "misclassified.csv", limit=5)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    top = mistakes.top_losses(ev, 5)
    assert list(rows[0]) == ["file", "true", "predicted", "probability", "loss",
                             "top_1", "p_1", "top_2", "p_2", "top_3", "p_3"]
    assert [r["file"] for r in rows] == [e.file for e in top]
    assert float(rows[0]["loss"]) == pytest.approx(top[0].loss, abs=1e-5)
    assert rows[0]["top_1"] == rows[0]["predicted"] and rows[0]["top_1"] != rows[0]["true"]
    assert float(rows[0]["p_1"]) >= float(rows[0]["p_2"]) >= float(rows[0]["p_3"])
