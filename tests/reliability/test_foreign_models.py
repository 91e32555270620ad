"""Models from elsewhere: a plain Keras classifier without cnn-tui's metadata works on named
folders (their names are taken, and said), and a colour/grayscale mismatch is one clear line."""

from __future__ import annotations

import json

import pytest

from cnn_tui.core.errors import ModelError
from cnn_tui.core.events import Notice
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import DataParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import Inputs, TaskSpec

from tests_support import write_image_folder


def _plain_keras_model(path, channels=1):
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    model = keras.Sequential([keras.Input((12, 12, channels)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(path)
    return path


def _data(tmp_path, names, colour=False):
    write_image_folder(tmp_path / "testing", names, 5, 12, colour=colour)
    write_image_folder(tmp_path / "training", names, 5, 12, colour=colour)
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"num_classes": 3, "train_dir": "training", "test_dir": "testing", "image_size": 12,
                                "result_dir": "results"}))
    return DataParams.load(path)


def test_a_model_without_class_names_takes_the_folder_names(tmp_path):
    model = _plain_keras_model(tmp_path / "plain.keras")
    data = _data(tmp_path, ["cat", "dog", "cow"])
    run = control.prepare(TaskSpec("predict", model=str(model)), data, None, parent=tmp_path / "runs")
    events: list = []
    outcome = control.run_here(run, TaskSpec.load(run.path), emit=events.append)
    assert outcome.status == "finished"
    assert outcome.evaluation.evaluation.class_names == ["cat", "cow", "dog"]
    assert any(isinstance(e, Notice) and "records no class names" in e.text for e in events)
    assert "cat" in (run.path / "confusion_matrix.csv").read_text()


def test_a_grayscale_model_on_colour_images_says_which_differs(tmp_path):
    from cnn_tui.core.runs import steps

    model = NetModel.load(_plain_keras_model(tmp_path / "gray.keras", channels=1))
    data = _data(tmp_path, ["a", "b", "c"], colour=True)
    colour_set = steps.load_test_set(data)  # loaded before the model, as in the TUI: colour
    assert colour_set.channels == 3
    run = control.prepare(TaskSpec("predict"), data, None, parent=tmp_path / "runs")
    with pytest.raises(ModelError, match=r"expects grayscale \(1 channel\) images but the test set was loaded as "
                                         r"colour \(3 channels\)"):
        control.run_here(run, TaskSpec.load(run.path), inputs=Inputs(net=model, test_set=colour_set))
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "failed" and "expects grayscale" in record["message"]


def test_predict_from_the_cli_with_a_model_without_class_names(tmp_path, capsys):
    from cnn_tui.cli import main

    model = _plain_keras_model(tmp_path / "plain.keras")
    _data(tmp_path, ["cat", "dog", "cow"])
    code = main(["predict", "--json", "--data", str(tmp_path / "d.json"), "--model", str(model)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["class_names"] == ["cat", "cow", "dog"]
    assert "records no class names" in err
