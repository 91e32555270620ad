"""`cnn-tui split` and `cnn-tui check` as a user runs them: tables, one line per finding, exit codes."""

import json
import os
import shutil

from cnn_tui.cli import main

from tests_support import write_image_folder


def run_cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_split_then_check_a_clean_set(capsys, tmp_path):
    source = write_image_folder(tmp_path / "all", ["cat", "dog"], per_class=10, size=12)
    out = tmp_path / "split"
    code, stdout, err = run_cli(capsys, "split", str(source), "--out", str(out), "--seed", "3")
    assert code == 0, err
    assert "│ cat   │        8 │       2 │" in stdout and "│ total │       16 │       4 │" in stdout
    assert f"wrote {out} (20 hard links, 0 copies; the originals are untouched)" in stdout
    code, stdout, err = run_cli(capsys, "check", "--data", str(out / "data_params.json"))
    assert code == 0, err
    assert stdout.rstrip().endswith("no problems found")
    assert "16 images, imbalance 1.00 (largest/smallest class), usually 12x12 grayscale, 0 unreadable" in stdout


def test_split_json_counts_and_a_refused_output(capsys, tmp_path):
    source = write_image_folder(tmp_path / "all", 3, per_class=10)
    code, stdout, _ = run_cli(capsys, "split", str(source), "--out", str(tmp_path / "s"), "--val", "0.2",
                              "--copy", "--json")
    body = json.loads(stdout)
    assert code == 0 and body["copied"] == 30 and body["linked"] == 0
    assert body["counts"] == {"training": {"0": 6, "1": 6, "2": 6}, "validation": {"0": 2, "1": 2, "2": 2},
                              "testing": {"0": 2, "1": 2, "2": 2}}
    code, stdout, err = run_cli(capsys, "split", str(source), "--out", str(tmp_path / "s"))
    assert code == 2 and stdout == ""
    assert err.strip().splitlines() == [f"error: {tmp_path / 's'}: the output folder is not empty (4 entries); "
                                        "choose a new or empty folder so nothing is mixed or overwritten"]


def test_check_prints_each_finding_on_a_line_and_exits_1(capsys, tmp_path):
    source = write_image_folder(tmp_path / "all", ["a", "b"], per_class=10)
    out = tmp_path / "s"
    assert run_cli(capsys, "split", str(source), "--out", str(out))[0] == 0
    test_file = sorted((out / "testing" / "b").iterdir())[0]
    shutil.copy(test_file, out / "training" / "a" / "sneaky.png")  # leak, labelled otherwise
    code, stdout, err = run_cli(capsys, "check", "--data", str(out / "data_params.json"))
    assert code == 1
    assert f"leak: test image b/{test_file.name} is also in the training set (a/sneaky.png)" in stdout.splitlines()
    assert err.strip() == "error: 1 problem(s) found"
    code, stdout, _ = run_cli(capsys, "check", "--data", str(out / "data_params.json"), "--json")
    body = json.loads(stdout)
    assert (code, body["exit_code"], body["ok"]) == (1, 1, False)
    assert [f["kind"] for f in body["findings"]] == ["leak"]


def test_check_with_a_missing_folder_is_a_user_mistake(capsys, tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"num_classes": 2, "train_dir": "nowhere", "test_dir": "nowhere", "image_size": 8}))
    code, stdout, err = run_cli(capsys, "check", "--data", str(data))
    assert code == 2 and stdout == ""
    assert err.strip() == f"error: {tmp_path / 'nowhere'}: training folder not found"
    assert not os.path.exists(tmp_path / "nowhere")
