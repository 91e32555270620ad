import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_tui.cli import main


def run_cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run_cli(capsys, *argv, "--json")
    return code, json.loads(out), err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in ("demo", "info", "summary", "train", "evaluate", "predict", "classify", "tune", "pipeline"):
        assert f"    {name}" in out


def test_bad_json_is_one_line_and_exit_code_2(capsys, tmp_path, params_files):
    data, hyper = params_files()
    hyper.write_text('{"init_rate": 0.1,')
    code, out, err = run_cli(capsys, "summary", "--data", str(data), "--hyper", str(hyper))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: {hyper}: not valid JSON (line 1, column 19: Expecting property name enclosed in double quotes)"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"train_dir": "../nowhere"}, "training folder not found"),
        ({"num_classes": 4}, "training folder has 3 class folders (0, 1, 2) but num_classes is 4"),
        ({"image_size": 2}, "image_size must be in [4, 2048], got 2"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, params_files, change, fragment):
    data, hyper = params_files()
    data.write_text(json.dumps({**json.loads(data.read_text()), **change}))
    code, out, err = run_cli(capsys, "train", "--data", str(data), "--hyper", str(hyper))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_unreadable_model_exits_2(capsys, params_files, tmp_path):
    data, _ = params_files()
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code, payload, err = run_json(capsys, "evaluate", "--data", str(data), "--model", str(fake))
    assert code == 2 and payload["exit_code"] == 2
    assert payload["error"] == f"{fake}: not a Keras model file (not a zip archive, or truncated)"


def test_summary_json(capsys, params_files):
    data, hyper = params_files(size=12)
    code, payload, _ = run_json(capsys, "summary", "--data", str(data), "--hyper", str(hyper))
    assert code == 0 and payload["command"] == "summary"
    assert payload["input_shape"] == [12, 12, 1] and payload["class_names"] == ["0", "1", "2"]
    assert payload["layers"][0] == {"name": "conv2d", "kind": "Conv2D", "output_shape": "(None, 12, 12, 8)", "params": 80}
    assert payload["total_params"] == sum(layer["params"] for layer in payload["layers"])


def test_train_then_evaluate_predict_and_classify(capsys, params_files, tmp_path):
    data, hyper = params_files(hyper={"epochs": 3})
    code, trained, _ = run_json(capsys, "train", "--data", str(data), "--hyper", str(hyper), "--validate", "0.25")
    assert code == 0 and trained["status"] == "finished" and trained["epochs_done"] == 3
    run_dir = Path(trained["run_dir"])
    assert run_dir.parent == (tmp_path / "results").resolve()  # result_dir from the data params
    assert {"model.keras", "history.csv", "train_val_plots.png", "run.json", "data_params.json",
            "hyper_params.json"} <= {p.name for p in run_dir.iterdir()}
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["task"] == "train" and record["details"]["epochs_done"] == 3
    assert set(trained["final"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy,seconds" and len(history) == 4

    model = run_dir / "model.keras"
    code, evaluated, _ = run_json(capsys, "evaluate", "--data", str(data), "--model", str(model))
    assert code == 0 and evaluated["samples"] == 18 and evaluated["accuracy"] > 0.5
    code, predicted, out = run_json(capsys, "predict", "--data", str(data), "--model", str(model))
    assert code == 0
    matrix = predicted["confusion_matrix"]
    assert sum(map(sum, matrix)) == 18 and [sum(row) for row in matrix] == [6, 6, 6]
    assert [r["label"] for r in predicted["report"]] == ["0", "1", "2", "micro avg", "macro avg", "weighted avg"]
    files = predicted["files"]
    assert Path(files["confusion_png"]).stat().st_size > 1000
    assert Path(files["confusion_csv"]).read_text().splitlines()[0] == "true \\ predicted,0,1,2"

    image = tmp_path / "data" / "testing" / "2" / "img_000.png"
    code, classified, _ = run_json(capsys, "classify", "--model", str(model), str(image))
    assert code == 0 and len(classified["results"][0]["top"]) == 3

    code, out, _ = run_cli(capsys, "predict", "--data", str(data), "--model", str(model))
    assert "Confusion matrix (rows: true class, columns: predicted)" in out and "weighted avg" in out


def test_tune_json_and_files(capsys, params_files):
    data, hyper = params_files(hyper={"epochs": 1, "num_units": [8, 16]})
    code, payload, err = run_json(capsys, "tune", "--data", str(data), "--hyper", str(hyper), "--cv", "2")
    assert code == 0 and payload["status"] == "finished"
    assert payload["columns"] == ["num_units"] and len(payload["folds"]) == 4 and len(payload["table"]) == 2
    assert "2 combination(s) x 2 folds = 4 fits" in err
    run_dir = Path(payload["run_dir"])
    assert len((run_dir / "tuning_results.csv").read_text().splitlines()) == 5
    best = json.loads((run_dir / "best_hyper_params.json").read_text())
    assert best["num_units"] == payload["best"]["num_units"]
    assert not (run_dir / ".work").exists()


def test_demo_twice_changes_nothing(capsys, tmp_path):
    args = ["demo", "--dir", str(tmp_path / "d"), "--app-input", str(tmp_path / "in")]
    code, first, _ = run_json(capsys, *args)
    pngs = sorted((tmp_path / "d").rglob("*.png"))
    stamps = [p.stat().st_mtime_ns for p in pngs]
    code2, second, _ = run_json(capsys, *args)
    assert code == code2 == 0
    assert (first["written"], first["unchanged"]) == (1797, 0) and (second["written"], second["unchanged"]) == (0, 1797)
    assert sorted((tmp_path / "d").rglob("*.png")) == pngs and [p.stat().st_mtime_ns for p in pngs] == stamps
    assert len(list((tmp_path / "d" / "digits" / "training").rglob("*.png"))) == 1437
    data = json.loads((tmp_path / "in" / "digits_data_params.json").read_text())
    assert data["train_dir"] == "../d/digits/training" and data["num_classes"] == 10
    assert not list((tmp_path / "d").rglob(".*"))  # no temp files left


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "cnn_tui", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_subprocess_user_error_has_no_traceback(tmp_path):
    (tmp_path / "d.json").write_text("[]")
    proc = _cli("summary", "--data", str(tmp_path / "d.json"), "--hyper", str(tmp_path / "h.json"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip() == f"error: {tmp_path / 'd.json'}: data params must be a JSON object {{...}}, got a list"


def test_sigint_stops_training_saves_and_exits_130(params_files):
    data, hyper = params_files(per_class=40, hyper={"epochs": 200, "batch_size": 4})
    proc = _cli("train", "--data", str(data), "--hyper", str(hyper), "--json")
    deadline = time.monotonic() + 90
    lines = []
    while time.monotonic() < deadline:  # wait for the first finished epoch
        line = proc.stderr.readline()
        lines.append(line)
        if line.startswith("epoch   1/200"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + err
    payload = json.loads(out)
    assert payload["status"] == "stopped" and payload["epochs_done"] >= 1
    run_dir = Path(payload["run_dir"])
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    assert (run_dir / "model.keras").stat().st_size > 0
    assert "SIGINT: stopping after the current batch" in err


def test_info_prints_no_empty_header_row(capsys):
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cnn-tui info"
    # the title, the top border, then the first row of facts: no row of empty header cells between
    assert "cnn-tui" in lines[2] and lines[2].strip("│┃ ").startswith("cnn-tui"), lines[:4]
