"""`cnn-tui presets` as a user runs it: the list, a preset as a file on stdout that trains, mistakes."""

import json

from cnn_tui.cli import main
from cnn_tui.core.params import presets
from cnn_tui.core.params.files import HyperParams

from tests_support import write_image_folder


def run_cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_lists_each_name_with_its_description(capsys):
    code, out, err = run_cli(capsys, "presets")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(presets.preset_names())
    for line, name in zip(lines, presets.preset_names()):
        assert line.endswith(presets.describe(name))


def test_a_preset_prints_as_a_hyper_params_file_that_loads(capsys, tmp_path):
    code, out, err = run_cli(capsys, "presets", "accurate")
    assert code == 0 and err == ""
    assert json.loads(out) == presets.preset("accurate").to_dict()
    path = tmp_path / "h.json"
    path.write_text(out)  # what `cnn-tui presets accurate > h.json` leaves
    assert HyperParams.load(path).first() == presets.preset("accurate").first()


def test_the_printed_preset_trains_from_the_cli(capsys, tmp_path):
    write_image_folder(tmp_path / "training", 3, per_class=6, size=16)
    write_image_folder(tmp_path / "testing", 3, per_class=2, size=16, seed=1)
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"num_classes": 3, "train_dir": "training", "test_dir": "testing", "image_size": 16}))
    _, out, _ = run_cli(capsys, "presets", "fast")
    (tmp_path / "h.json").write_text(out)
    code, out, err = run_cli(capsys, "train", "--data", str(data), "--hyper", str(tmp_path / "h.json"),
                             "--set", "epochs=1", "--out", str(tmp_path / "runs"), "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["exit_code"] == 0 and body["status"] == "finished"
    saved = HyperParams.load(next((tmp_path / "runs").glob("*/hyper_params.json")))
    assert saved.first() == presets.preset("fast").with_values({"epochs": 1}).first()


def test_json_lists_the_presets_and_holds_one_as_an_object(capsys):
    code, out, _ = run_cli(capsys, "presets", "--json")
    body = json.loads(out)
    assert code == 0 and [p["name"] for p in body["presets"]] == list(presets.preset_names())
    code, out, _ = run_cli(capsys, "presets", "seed", "--json")
    body = json.loads(out)  # one JSON object on stdout, nothing else
    assert code == 0 and body["name"] == "seed" and body["hyper_params"] == presets.preset("seed").to_dict()


def test_an_unknown_preset_exits_2_with_one_line(capsys):
    code, out, err = run_cli(capsys, "presets", "acurate")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: unknown preset 'acurate'; the presets are "
                                        + ", ".join(presets.preset_names())]
