"""The CLI on how far its figures can be trusted: intervals, calibration and top-k in evaluate,
predict and pipeline (tables, --json, evaluation.json, reliability.png); --calibrate; compare."""

import json
from pathlib import Path

import pytest

from cnn_tui.cli import main
from cnn_tui.core.models.model import NetModel


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_pipeline_with_calibrate_keeps_a_temperature_and_shows_ece_before_and_after(capsys, params_files):
    data, hyper = params_files(classes=4, per_class=10, test_per_class=5, hyper={"epochs": 2})
    code, out, err = run_json(capsys, "pipeline", "--data", str(data), "--hyper", str(hyper), "--calibrate",
                              "--validate", "0.25")
    assert code == 0, err
    run = Path(out["run_dir"])
    net = NetModel.load(run / "model.keras")
    record = json.loads((run / "run.json").read_text())["details"]
    assert net.temperature == record["temperature"] and net.temperature != 1.0
    assert "validation_ece_before" in record and "calibrated on 10 validation images" in err
    saved = json.loads((run / "evaluation.json").read_text())
    evaluation = out["evaluation"]
    for body in (saved, evaluation):
        assert body["temperature"] == net.temperature and body["ece_before_temperature"] is not None
        accuracy = body["intervals"]["accuracy"]
        assert accuracy["low"] <= body["accuracy"] <= accuracy["high"]
        assert "top3_accuracy" in body and "top5_accuracy" not in body  # 4 classes: top-5 says nothing
        assert len(body["intervals"]["per_class"]) == 4
    assert (run / "reliability.png").stat().st_size > 1000


def test_predict_prints_the_intervals_and_the_reliability_table(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 1})
    assert main(["train", "--data", str(data), "--hyper", str(hyper)]) == 0
    model = next((tmp_path / "results").glob("*-train/model.keras"))
    capsys.readouterr()
    assert main(["predict", "--data", str(data), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "How sure: 95 % intervals" in out and "Per-class precision and recall, 95 % intervals" in out
    assert "Reliability (top probability bins)" in out and "not calibrated" in out
    assert "%" in out and "–" in out  # 98.1 % (96.7–99.4)


def test_compare_says_two_evaluations_of_one_model_are_within_noise(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 1})
    assert main(["train", "--data", str(data), "--hyper", str(hyper)]) == 0
    model = next((tmp_path / "results").glob("*-train/model.keras"))
    capsys.readouterr()
    runs = []
    for _ in range(2):
        code, out, _ = run_json(capsys, "evaluate", "--data", str(data), "--model", str(model))
        assert code == 0
        runs.append(out["run_dir"])
    code, out, err = run_json(capsys, "compare", *runs, "--results", str(tmp_path / "results"))
    assert code == 0, err
    other = next(r for r in out["runs"] if not r["best"])
    assert other["versus_best"]["within_noise"] is True
    capsys.readouterr()
    assert main(["compare", *runs]) == 0
    assert "within noise" in capsys.readouterr().out


def test_compare_cannot_tell_runs_tested_on_other_images(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 1})
    assert main(["train", "--data", str(data), "--hyper", str(hyper)]) == 0
    model = next((tmp_path / "results").glob("*-train/model.keras"))
    capsys.readouterr()
    code, first, _ = run_json(capsys, "evaluate", "--data", str(data), "--model", str(model))
    other = json.loads(Path(data).read_text())
    other["test_dir"] = "../data/training"  # other images, same classes
    other_path = Path(data).with_name("other.json")
    other_path.write_text(json.dumps(other))
    code, second, _ = run_json(capsys, "evaluate", "--data", str(other_path), "--model", str(model))
    code, out, _ = run_json(capsys, "compare", first["run_dir"], second["run_dir"])
    verdict = next(r for r in out["runs"] if not r["best"])["versus_best"]
    assert verdict["within_noise"] is None and "same images" in verdict["reason"]


def test_compare_needs_a_test_accuracy(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 1})
    code, out, _ = run_json(capsys, "train", "--data", str(data), "--hyper", str(hyper))
    code = main(["compare", out["run_dir"], out["run_dir"]])
    assert code == 2
    assert "has a test accuracy" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "pipeline"])
def test_calibrate_is_an_option_of(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--calibrate" in capsys.readouterr().out
