"""`predict --mistakes`, `explain` and `features` from the command line."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from cnn_tui.cli import main
from cnn_tui.cli.inspect_commands import HalfBlocks
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import HyperParams

from tests_support import TINY_HYPER


def run_json(capsys, *argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _model(path: Path, size: int = 12) -> Path:
    """An untrained seed CNN for the params_files classes: it makes mistakes to look at."""
    config = HyperParams.from_dict(TINY_HYPER).first()
    net = build_model(config, image_size=size, channels=1, class_names=["0", "1", "2"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return net.save(path)


def test_predict_mistakes_lists_the_most_confident_mistakes(capsys, params_files, tmp_path):
    data, _ = params_files()
    model = _model(tmp_path / "m.keras")
    code, result, _ = run_json(capsys, "predict", "--data", str(data), "--model", str(model), "--mistakes", "4",
                               "--out", str(tmp_path / "runs"))
    assert code == 0
    wrong = 18 - round(result["accuracy"] * 18)
    assert wrong >= 4  # an untrained model: enough mistakes to list
    found = result["mistakes"]
    assert len(found) == 4
    assert all(m["true"] != m["predicted"] for m in found)
    assert [m["loss"] for m in found] == sorted((m["loss"] for m in found), reverse=True)
    assert all(m["top"][0][0] == m["predicted"] and len(m["top"]) == 3 for m in found)
    matrix = result["confusion_matrix"]
    for pair in result["most_confused"]:
        assert pair["count"] == matrix[int(pair["true"])][int(pair["predicted"])]
    code = main(["predict", "--data", str(data), "--model", str(model), "--mistakes", "2", "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0 and f"Most confident mistakes (2 of {wrong}" in out and "Most confused" in out
    assert main(["predict", "--data", str(data), "--model", str(model), "--mistakes", "0"]) == 2
    assert "--mistakes: must be at least 1" in capsys.readouterr().err


def test_explain_saves_a_heatmap_in_the_models_run_folder(capsys, params_files, tmp_path):
    params_files()
    run = tmp_path / "results" / "run-1"
    model = _model(run / "model.keras")
    (run / "run.json").write_text("{}")
    image = tmp_path / "data" / "testing" / "2" / "img_000.png"
    code, result, err = run_json(capsys, "explain", "--model", str(model), str(image))
    assert code == 0, err
    png = Path(result["png"])
    assert png.parent == run and png.name.startswith("gradcam-2-img_000-") and png.read_bytes()[:4] == b"\x89PNG"
    other = tmp_path / "data" / "testing" / "1" / "img_000.png"  # the same file name in another class folder
    code, again, err = run_json(capsys, "explain", "--model", str(model), str(other))
    assert code == 0, err
    assert Path(again["png"]).name.startswith("gradcam-1-img_000-") and png.is_file()  # neither overwrites the other
    assert result["layer"] == "max_pooling2d_1" and result["method"] == "hirescam"
    assert len(result["heatmap"]) == 3 and len(result["heatmap"][0]) == 3  # 12 px, pooled twice
    assert result["explained"] == result["predicted"] == result["top"][0][0]
    code, result, _ = run_json(capsys, "explain", "--model", str(model), str(image), "--class", "1",
                               "--method", "gradcam", "--out", str(tmp_path / "cam.png"))
    assert code == 0 and result["explained"] == "1" and result["method"] == "gradcam"
    assert (tmp_path / "cam.png").is_file()


def test_features_lists_every_convolution_and_saves_the_grids(capsys, params_files, tmp_path, monkeypatch):
    params_files()
    model = _model(tmp_path / "models" / "m.keras")  # not in a run folder: the PNG goes to the current folder
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "data" / "testing" / "0" / "img_001.png"
    code, result, err = run_json(capsys, "features", "--model", str(model), str(image))
    assert code == 0, err
    assert [(layer["layer"], layer["channels"], layer["height"]) for layer in result["layers"]] == [
        ("conv2d", 8, 12), ("conv2d_1", 8, 6)]
    png = Path(result["png"])
    assert png.parent == tmp_path and png.name.startswith("features-0-img_001-") and png.is_file()
    code = main(["features", "--model", str(model), str(image), "--out", str(tmp_path / "f.png")])
    out = capsys.readouterr().out
    assert code == 0 and "conv2d_1" in out and f"saved {tmp_path / 'f.png'}" in out


@pytest.mark.parametrize("command", ["explain", "features"])
def test_user_mistakes_are_one_line(capsys, tmp_path, command):
    model = _model(tmp_path / "m.keras")
    (tmp_path / "bad.png").write_text("not a picture")
    for image, problem in ((tmp_path / "nope.png", "file not found"), (tmp_path / "bad.png", "cannot be read"),
                           (tmp_path, "is a folder")):
        code = main([command, "--model", str(model), str(image)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and problem in err and "Traceback" not in err
    code = main([command, "--model", str(tmp_path / "none.keras"), str(tmp_path / "bad.png")])
    assert code == 2 and "none.keras: model file not found" in capsys.readouterr().err
    if command == "explain":
        from PIL import Image

        Image.new("L", (12, 12)).save(tmp_path / "ok.png")
        assert main([command, "--model", str(model), str(tmp_path / "ok.png"), "--class", "zebra"]) == 2
        assert "no class named 'zebra'" in capsys.readouterr().err


def test_half_blocks_draw_two_pixel_rows_a_line():
    import numpy as np

    pixels = np.zeros((4, 2, 3), np.float32)
    pixels[0] = [1, 0, 0]  # red on top, blue below, in each cell of the first line
    pixels[1] = [0, 0, 1]
    console = Console(file=io.StringIO(), width=40, color_system="truecolor", force_terminal=True)
    console.print(HalfBlocks(pixels, columns=2))
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].count("▀") == 2
    assert "38;2;255;0;0" in lines[0] and "48;2;0;0;255" in lines[0]  # foreground red, background blue


def test_predict_mistakes_of_a_perfect_model_says_there_are_none(capsys):
    from types import SimpleNamespace

    import numpy as np

    from cnn_tui.cli.console import CliConsole
    from cnn_tui.cli.inspect_commands import print_mistakes

    perfect = SimpleNamespace(probabilities=np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), y_true=np.array([0, 1, 0]),
                              y_pred=np.array([0, 1, 0]), class_names=["a", "b"], files=["t/a/1.png", "t/b/2.png",
                                                                                           "t/a/3.png"])
    result = print_mistakes(CliConsole(), perfect, 5)
    out = capsys.readouterr().out
    assert "no mistakes: all 3 test images are predicted right" in out
    assert "0 of 0" not in out and "Most confident mistakes" not in out and result["mistakes"] == []
