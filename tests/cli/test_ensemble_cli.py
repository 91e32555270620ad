"""cnn-tui ensemble (and tune --ensemble): one .keras model that classify, evaluate and export use
unchanged; the ensemble against its members on the test set; a mismatch is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnn_tui.cli import main
from cnn_tui.core.models import export
from cnn_tui.core.models.model import NetModel


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _train(capsys, data, hyper):
    code, trained, err = run_json(capsys, "train", "--data", str(data), "--hyper", str(hyper))
    assert code == 0, err
    return Path(trained["run_dir"]) / "model.keras"


@pytest.fixture
def two_models(capsys, params_files):
    data, hyper = params_files(classes=3, per_class=8, test_per_class=4, size=10, hyper={"epochs": 1})
    first = _train(capsys, data, hyper)
    hyper.write_text(json.dumps({**json.loads(hyper.read_text()), "num_units": 8}))
    return data, first, _train(capsys, data, hyper)


def test_ensemble_of_two_trained_models_evaluates_classifies_and_exports(capsys, two_models, tmp_path):
    data, first, second = two_models
    out = tmp_path / "e.keras"
    code, made, err = run_json(capsys, "ensemble", str(first), str(second), "--out", str(out), "--data", str(data))
    assert code == 0, err
    assert [m["model"] for m in made["members"]] == [str(first), str(second)]
    found = made["evaluation"]
    assert [m["model"] for m in found["members"]] == [str(first), str(second)]
    assert found["best_member"] in (str(first), str(second))
    accuracy = found["ensemble"]["accuracy"]
    assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert found["against_best_member"]["images"] == 12

    code, evaluated, err = run_json(capsys, "evaluate", "--data", str(data), "--model", str(out))
    assert code == 0, err
    assert evaluated["samples"] == 12 and evaluated["accuracy"] == pytest.approx(accuracy["value"])
    image = tmp_path / "data" / "testing" / "1" / "img_000.png"
    code, classified, err = run_json(capsys, "classify", "--model", str(out), str(image), "--tta")
    assert code == 0, err
    assert len(classified["results"][0]["top"]) == 3
    if not export.missing_packages("saved_model"):
        code, exported, err = run_json(capsys, "export", str(out), "--format", "saved_model",
                                       "--out", str(tmp_path / "served"))
        assert code == 0, err
        assert exported["parity"]["agreement"] >= 0.999

    code = main(["ensemble", str(first), str(second), "--out", str(tmp_path / "e2.keras"), "--data", str(data)])
    shown = capsys.readouterr()
    assert code == 0 and "Ensemble against its members" in shown.out and "ensemble − best member" in shown.out


def test_members_of_other_classes_are_one_line_naming_the_file(capsys, two_models, tmp_path):
    _, first, _ = two_models
    net = NetModel.load(first)
    net.class_names = ["cat", "dog", "owl"]
    other = net.save(tmp_path / "other.keras")
    code = main(["ensemble", str(first), str(other), "--out", str(tmp_path / "e.keras"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "other.keras" in err and "classes" in err
    assert not (tmp_path / "e.keras").exists()


def test_tune_ensemble_writes_ensemble_keras_from_the_cv_folds(capsys, params_files):
    data, hyper = params_files(classes=3, per_class=8, test_per_class=4, size=10,
                               hyper={"epochs": 1, "num_units": [8, 16]})
    code, tuned, err = run_json(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2", "--ensemble")
    assert code == 0, err
    run_dir = Path(tuned["run_dir"])
    assert tuned["files"]["ensemble"] == str(run_dir / "ensemble.keras")
    details = json.loads((run_dir / "run.json").read_text())["details"]["ensemble"]
    assert details == {"model": "ensemble.keras", "combinations": 1,
                       "members": ["ensemble/fold-1.keras", "ensemble/fold-2.keras"]}
    assert not (run_dir / ".work").exists()
    net = NetModel.load(run_dir / "ensemble.keras")
    assert net.class_names == ["0", "1", "2"] and net.config.num_units == tuned["best"]["num_units"]
    code, found, err = run_json(capsys, "ensemble", str(run_dir / "ensemble.keras"), "--data", str(data))
    assert code == 0, err
    assert [m["model"] for m in found["evaluation"]["members"]] == details["members"]


def test_tune_ensemble_on_a_cluster_is_one_line(capsys, params_files):
    data, hyper = params_files(hyper={"num_units": [8, 16]})
    code = main(["tune", "--data", str(data), "--hyper", str(hyper), "--ensemble", "--cluster", "local:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--cluster" in err


def test_one_model_without_out_is_a_clear_error(capsys, two_models):
    _, first, _ = two_models
    code = main(["ensemble", str(first)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--out" in err and len(err.splitlines()) == 1
