"""--positive CLASS --target-recall R on pipeline, and cnn-tui threshold on a saved model: the threshold
is chosen on the validation share (its recall checked there), kept in the model file, applied by predict
(confusion matrix, per-class table) and drawn on the ROC and precision–recall PNGs."""

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_tui.cli import main
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.models.threshold import decide
from cnn_tui.core.params.files import DataParams
from cnn_tui.core.runs import steps
from cnn_tui.core.training.evaluation import predict_probabilities


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def _validation_recall(data_path, net, positive, fraction):
    """The recall of ``positive`` on the share a training with ``fraction`` held out (its seed, its split)."""
    data = DataParams.load(data_path)
    _, validation = steps.load_training_set(data).split(fraction, data.seed)
    predicted = decide(predict_probabilities(net, validation.x), net.class_names, net.threshold)
    k = net.class_names.index(positive)
    return float((predicted[validation.y == k] == k).mean())


def test_pipeline_with_a_positive_class_meets_the_target_recall_on_validation(capsys, params_files):
    data, hyper = params_files(classes=3, per_class=12, test_per_class=6, hyper={"epochs": 1})
    code, out, err = run_json(capsys, "pipeline", "--data", str(data), "--hyper", str(hyper), "--validate", "0.25",
                              "--positive", "1", "--target-recall", "0.95")
    assert code == 0, err
    run = Path(out["run_dir"])
    net = NetModel.load(run / "model.keras")
    assert net.threshold is not None and net.threshold.positive == "1" and net.threshold.target == 0.95
    assert 0 <= net.threshold.value <= 1 and net.threshold.reached >= 0.95
    assert _validation_recall(data, net, "1", 0.25) >= 0.95  # 3 of 3 disease images: recall 1
    record = json.loads((run / "run.json").read_text())["details"]
    assert record["threshold"]["value"] == net.threshold.value
    assert "threshold on 9 validation images: 1 when its probability ≥" in err
    evaluation = out["evaluation"]
    assert evaluation["threshold"]["value"] == net.threshold.value
    for name in ("roc_curves.png", "precision_recall_curves.png"):
        assert (run / name).read_bytes()[:4] == b"\x89PNG"


def test_threshold_sets_one_on_a_saved_model_and_predict_applies_it(capsys, params_files, tmp_path):
    data, hyper = params_files(classes=3, per_class=12, test_per_class=6, hyper={"epochs": 1})
    code, trained, err = run_json(capsys, "train", "--data", str(data), "--hyper", str(hyper))
    assert code == 0, err
    model = Path(trained["run_dir"]) / "model.keras"
    code, before, err = run_json(capsys, "predict", "--data", str(data), "--model", str(model))
    assert code == 0, err
    out_model = tmp_path / "screening.keras"
    code, chosen, err = run_json(capsys, "threshold", "--data", str(data), "--model", str(model), "--positive", "2",
                                 "--target-recall", "1", "--write", str(out_model))
    assert code == 0, err
    assert NetModel.load(model).threshold is None  # --write: the original is left as it was
    net = NetModel.load(out_model)
    assert net.threshold.as_dict() == chosen["threshold"] and net.threshold.metric == "recall"
    assert _validation_recall(data, net, "2", 0.2) == 1.0  # the data params' validation_split 0.2
    code, after, err = run_json(capsys, "predict", "--data", str(data), "--model", str(out_model))
    assert code == 0, err
    # the matrix and the per-class table are the threshold's decisions, not the argmax's
    saved = np.load(Path(after["run_dir"]) / "predictions.npz")
    expected = decide(saved["probabilities"], net.class_names, net.threshold)
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (saved["y_true"], expected), 1)
    assert after["confusion_matrix"] == matrix.tolist()
    argmax = np.zeros((3, 3), dtype=int)
    np.add.at(argmax, (saved["y_true"], saved["probabilities"].argmax(axis=1)), 1)
    assert before["confusion_matrix"] == argmax.tolist()
    recall_2 = next(r["recall"] for r in after["report"] if r["label"] == "2")
    assert recall_2 == pytest.approx(matrix[2, 2] / matrix[2].sum())
    capsys.readouterr()
    images = [str(f) for f in sorted((tmp_path / "data" / "testing" / "0").iterdir())][:2]
    assert main(["classify", "--model", str(out_model), *images]) == 0
    assert "the class applies the model's threshold: 2 when its probability ≥" in capsys.readouterr().out


def test_a_bad_class_is_one_line_and_a_bad_target_is_refused(capsys, params_files, tmp_path):
    data, hyper = params_files(classes=3, per_class=12, test_per_class=6, hyper={"epochs": 1})
    code = main(["pipeline", "--data", str(data), "--hyper", str(hyper), "--positive", "cancer"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--positive cancer: no such class (the classes are 0, 1, 2)" in err and "Traceback" not in err
    for bad in ("0", "1.5", "x"):
        assert main(["pipeline", "--data", str(data), "--hyper", str(hyper), "--positive", "1",
                     "--target-recall", bad]) == 2
        assert "argument --target-recall:" in capsys.readouterr().err
