import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.errors import ModelError
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.evaluation import Evaluation, classify_files, evaluate
from cnn_tui.core.training.fit import train

from tests_support import TINY_HYPER, write_image_folder


def _evaluation(y_true, y_pred, names=("a", "b", "c")):
    probabilities = np.full((len(y_true), len(names)), 0.1, dtype=np.float32)
    probabilities[np.arange(len(y_true)), y_pred] = 0.8
    return Evaluation(list(names), np.asarray(y_true), probabilities, [f"f{i}" for i in range(len(y_true))], 0.0)


def test_confusion_and_report_match_scikit_learn():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0]
    ev = _evaluation(y_true, y_pred)
    assert ev.accuracy == pytest.approx(6 / 9)
    assert ev.loss == pytest.approx(-np.log(0.8) * 6 / 9 - np.log(0.1) * 3 / 9)
    np.testing.assert_array_equal(ev.confusion(), confusion_matrix(y_true, y_pred))
    assert ev.confusion()[2, 0] == 1  # rows: true class, columns: predicted
    expected = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    rows = {r.label: r for r in ev.report()}
    assert rows["b"].precision == pytest.approx(expected["1"]["precision"])
    assert rows["c"].recall == pytest.approx(expected["2"]["recall"])
    assert rows["macro avg"].f1 == pytest.approx(expected["macro avg"]["f1-score"])
    assert rows["weighted avg"].f1 == pytest.approx(expected["weighted avg"]["f1-score"])
    assert rows["micro avg"].precision == pytest.approx(6 / 9)
    assert [r.label for r in ev.report()][-3:] == ["micro avg", "macro avg", "weighted avg"]
    assert ev.misclassified()[0][1:3] in {("a", "b"), ("b", "c"), ("c", "a")}


def test_roc_auc_for_two_classes():
    ev = _evaluation([0, 0, 1, 1], [0, 1, 1, 1], names=("neg", "pos"))
    ev.probabilities[:, 1] = [0.1, 0.6, 0.7, 0.9]
    assert ev.roc_auc() == pytest.approx(1.0)
    ev.probabilities[:, 1] = [0.8, 0.6, 0.7, 0.9]
    assert ev.roc_auc() == pytest.approx(0.75)
    assert _evaluation([0, 0], [0, 1], names=("neg", "pos")).roc_auc() is None  # one class only: undefined


def test_evaluate_and_classify_with_a_trained_model(tmp_path):
    train_set = load_images(write_image_folder(tmp_path / "train", ["x", "y", "z"], per_class=20, seed=1), image_size=12)
    test_root = write_image_folder(tmp_path / "test", ["x", "y", "z"], per_class=5, seed=2)
    test_set = load_images(test_root, image_size=12, class_names=train_set.class_names)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 3}).first()
    net = build_model(config, image_size=12, channels=1, class_names=train_set.class_names)
    train(net, train_set, config)
    ev = evaluate(net, test_set)
    assert ev.samples == 15 and ev.accuracy > 0.7
    assert ev.confusion().sum() == 15
    (tmp_path / "junk.png").write_text("no")
    results = classify_files(net, [test_root / "z" / "img_000.png", tmp_path / "junk.png"], top_k=3)
    assert results[0].top[0][0] == "z" and len(results[0].top) == 3
    assert sum(p for _, p in results[0].top) == pytest.approx(1.0, abs=1e-4)
    assert results[1].error == "not an image Pillow can read" and results[1].top == []
    wrong = load_images(write_image_folder(tmp_path / "other", 2, per_class=3), image_size=12)
    with pytest.raises(ModelError, match="classifies 3 classes but the test set has 2"):
        evaluate(net, wrong)


def test_classify_says_what_a_folder_or_a_pipe_is_without_waiting(tmp_path):
    import os

    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.params.files import ModelConfig
    from cnn_tui.core.training.evaluation import classify_files

    config = ModelConfig(init_rate=0.02, decay_steps=400, decay_rate=0.9, kernel_size=3, num_filters=4, num_units=8,
                         momentum=0.9, drop_out=0.2, epochs=1, batch_size=8)
    net = build_model(config, image_size=8, channels=1, class_names=["a", "b"])
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    results = classify_files(net, [tmp_path, fifo, tmp_path / "none.png"])
    assert [r.error for r in results] == ["is a folder, not an image file", "not a regular file (a pipe, socket or device)",
                                          "file not found"]
