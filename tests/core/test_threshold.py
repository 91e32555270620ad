"""An operating threshold for one class: chosen for a target recall or precision, applied by the
predictions (the confusion matrix, the per-class table, classify), kept in the model file, drawn on
the ROC and precision–recall curves; old files (no threshold) predict the argmax as before."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from cnn_tui.core.errors import ModelError, UserError
from cnn_tui.core.inspect import reports
from cnn_tui.core.models.model import METADATA_MEMBER, NetModel
from cnn_tui.core.models.threshold import Threshold, decide
from cnn_tui.core.runs.results import load_evaluation
from cnn_tui.core.training.evaluation import Evaluation, classify_files
from cnn_tui.core.training.thresholds import check_target, choose_threshold

from tests_support import write_image_folder

NAMES = ["healthy", "disease", "other"]


def _probabilities(disease: list[float]) -> np.ndarray:
    """Rows whose "disease" probability is given; the rest split 70/30 between healthy and other."""
    d = np.asarray(disease)
    return np.stack([(1 - d) * 0.7, d, (1 - d) * 0.3], axis=1)


def test_a_target_recall_takes_the_highest_threshold_that_reaches_it():
    # 10 disease images; their probabilities 0.05 .. 0.95; 5 others, all below 0.3
    disease = [0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05]
    others = [0.28, 0.2, 0.1, 0.02, 0.01]
    p = _probabilities(disease + others)
    y = np.array([1] * 10 + [0, 2, 0, 2, 0])
    chosen = choose_threshold(p, y, NAMES, "disease", "recall", 0.8)
    assert chosen.value == pytest.approx(0.25)  # 8 of 10 at or above it; 0.35 gives only 7
    assert chosen.reached == pytest.approx(0.8) and chosen.target == 0.8 and chosen.positive == "disease"
    predicted = decide(p, NAMES, chosen)
    recall = (predicted[y == 1] == 1).mean()
    assert recall >= 0.8
    assert chosen.value > 0.15  # the highest: one step lower would also reach it, with more false alarms
    assert choose_threshold(p, y, NAMES, "disease", "recall", 1.0).value == pytest.approx(0.05)


def test_a_target_precision_takes_the_lowest_threshold_that_reaches_it():
    disease = [0.9, 0.8, 0.6, 0.4]
    others = [0.7, 0.5, 0.1]
    p = _probabilities(disease + others)
    y = np.array([1, 1, 1, 1, 0, 2, 0])
    # t=0.4: 4 of 6 right (0.667); t=0.6: 3 of 4 (0.75); t=0.8: 2 of 2
    chosen = choose_threshold(p, y, NAMES, "disease", "precision", 0.75)
    assert chosen.value == pytest.approx(0.6) and chosen.reached == pytest.approx(0.75)


def test_a_target_no_threshold_reaches_says_the_best_reachable():
    p = _probabilities([0.3, 0.9, 0.8])
    y = np.array([1, 0, 2])  # the most probable "disease" images are others: precision at best 1/3
    with pytest.raises(UserError, match=r"cannot be met .* the best reachable is 0\.333"):
        choose_threshold(p, y, NAMES, "disease", "precision", 0.9)


@pytest.mark.parametrize(("positive", "target", "message"), [
    ("cancer", 0.9, r"--positive cancer: no such class \(the classes are healthy, disease, other\)"),
    ("disease", 0.0, r"must lie in \(0, 1\]"), ("disease", 1.5, r"must lie in \(0, 1\]")])
def test_a_bad_class_or_target_is_one_line(positive, target, message):
    with pytest.raises(UserError, match=message) as caught:
        check_target(positive, NAMES, "recall", target)
    assert "\n" not in str(caught.value)


def test_the_threshold_changes_the_confusion_matrix_as_expected():
    p = np.array([[0.6, 0.3, 0.1],   # healthy, argmax healthy; disease 0.3 ≥ 0.25: disease
                  [0.5, 0.2, 0.3],   # other; disease 0.2 < 0.25: the argmax of the others, healthy
                  [0.1, 0.8, 0.1],   # disease either way
                  [0.2, 0.1, 0.7]])  # other either way
    y = np.array([1, 0, 1, 2])
    plain = Evaluation(NAMES, y, p, ["a", "b", "c", "d"], 0.0)
    thresholded = Evaluation(NAMES, y, p, ["a", "b", "c", "d"], 0.0, threshold=Threshold("disease", 0.25))
    np.testing.assert_array_equal(plain.y_pred, [0, 0, 1, 2])
    np.testing.assert_array_equal(thresholded.y_pred, [1, 0, 1, 2])
    np.testing.assert_array_equal(plain.confusion(), [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(thresholded.confusion(), [[1, 0, 0], [0, 2, 0], [0, 0, 1]])
    assert [r.recall for r in thresholded.report()][:3] == [1.0, 1.0, 1.0]
    assert thresholded.accuracy == 1.0 and plain.accuracy == 0.75
    # a high threshold: disease only when sure, row 3 becomes the others' argmax
    strict = Evaluation(NAMES, y, p, ["a", "b", "c", "d"], 0.0, threshold=Threshold("disease", 0.9))
    np.testing.assert_array_equal(strict.y_pred, [0, 0, 0, 2])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    return NetModel(model, NAMES, 12, 1).save(tmp_path_factory.mktemp("model") / "tiny.keras")


def _rewrite_metadata(path, out, change):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == METADATA_MEMBER:
                meta = json.loads(body)
                change(meta)
                body = json.dumps(meta).encode()
            target.writestr(item, body)
    return out


def test_the_threshold_is_kept_in_the_model_file_and_applied_by_classify(saved, tmp_path):
    old = _rewrite_metadata(saved, tmp_path / "old.keras", lambda meta: meta.pop("threshold"))
    assert NetModel.load(old).threshold is None  # a file from before thresholds: the argmax
    net = NetModel.load(saved)
    net.threshold = Threshold("disease", 0.0, "recall", 0.95, 1.0)  # 0: always disease
    loaded = NetModel.load(net.save(tmp_path / "thresholded.keras"))
    assert loaded.threshold == net.threshold
    images = write_image_folder(tmp_path / "imgs", ["x"], per_class=3, size=12, seed=3)
    files = sorted((images / "x").iterdir())
    assert {r.predicted for r in classify_files(loaded, files)} == {"disease"}
    loaded.threshold = Threshold("disease", 1.0)  # never reached by a float32 softmax here: never disease
    assert "disease" not in {r.predicted for r in classify_files(loaded, files)}
    plain = classify_files(NetModel.load(old), files)
    assert all(r.predicted == r.top[0][0] for r in plain)


@pytest.mark.parametrize("value", ["high", {"positive": "cancer", "value": 0.5},
                                   {"positive": "disease", "value": 1.5}, {"positive": "disease", "value": True}])
def test_a_damaged_threshold_is_one_line(saved, tmp_path, value):
    bad = _rewrite_metadata(saved, tmp_path / "bad.keras", lambda meta: meta.update(threshold=value))
    with pytest.raises(ModelError, match="damaged model file: its threshold") as caught:
        NetModel.load(bad)
    assert "\n" not in str(caught.value)


def test_the_curves_are_drawn_and_the_saved_evaluation_keeps_the_threshold(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    p = rng.dirichlet([1, 1, 1], 60) + np.eye(3)[y]
    p /= p.sum(axis=1, keepdims=True)
    evaluation = Evaluation(NAMES, y, p, [f"{i}.png" for i in range(60)], 0.1, threshold=Threshold("disease", 0.3))
    roc, pr = reports.plot_class_curves(evaluation, tmp_path / "roc_curves.png", tmp_path / "precision_recall_curves.png")
    for path in (roc, pr):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    reports.write_predictions(evaluation, tmp_path / "predictions.npz")
    back = load_evaluation(tmp_path)
    assert back.threshold == evaluation.threshold
    np.testing.assert_array_equal(back.y_pred, evaluation.y_pred)


def test_the_intervals_and_the_mistakes_follow_the_threshold():
    from cnn_tui.core.inspect import mistakes
    from cnn_tui.core.training.uncertainty import assess

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 80)
    p = rng.dirichlet([1, 1, 1], 80) + 0.5 * np.eye(3)[y]
    p /= p.sum(axis=1, keepdims=True)
    plain = Evaluation(NAMES, y, p, [f"{i}.png" for i in range(80)], 0.0)
    thresholded = Evaluation(NAMES, y, p, plain.files, 0.0, threshold=Threshold("disease", 0.2))
    assert thresholded.accuracy != plain.accuracy
    trust = assess(thresholded)
    assert trust.intervals.accuracy.value == pytest.approx(thresholded.accuracy)
    assert trust.intervals.recall[1].value == pytest.approx(thresholded.report()[1].recall)
    matrix = thresholded.confusion()
    assert len(mistakes.cell(thresholded, 0, 1)) == matrix[0, 1]
    assert sum(c.count for c in mistakes.most_confused(thresholded)) == matrix.sum() - np.trace(matrix)


def test_the_task_keeps_its_target_and_refuses_a_damaged_one(tmp_path):
    from cnn_tui.core.errors import ResultsError
    from cnn_tui.core.runs.execute import TaskSpec

    spec = TaskSpec("pipeline", validate=0.2, positive="disease", target_precision=0.9)
    spec.save(tmp_path)
    back = TaskSpec.load(tmp_path)
    assert back.operating_target() == spec.operating_target()
    assert (back.operating_target().metric, back.operating_target().target) == ("precision", 0.9)
    assert TaskSpec("train", positive="disease").operating_target().target == 0.95  # the default recall
    assert TaskSpec("train").operating_target() is None
    body = json.loads((tmp_path / "task.json").read_text())
    (tmp_path / "task.json").write_text(json.dumps({**body, "target_recall": 2}))
    with pytest.raises(ResultsError, match="task.json is damaged: target_recall is 2"):
        TaskSpec.load(tmp_path)
