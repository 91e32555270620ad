"""``cnn-tui lr-find``: its run folder, the text plot, and ``--apply`` keeping the file's shape."""

from __future__ import annotations

import json
from pathlib import Path

from cnn_tui.cli import main
from cnn_tui.core.training.lr_finder import apply_rate


def test_lr_find_apply_writes_init_rate_keeping_the_other_fields_and_their_order(params_files, capsys):
    data_path, hyper_path = params_files(per_class=10, hyper={"init_rate": [0.05, 0.01], "schedule": "one_cycle"})
    before = json.loads(hyper_path.read_text())
    code = main(["lr-find", "--data", str(data_path), "--hyper", str(hyper_path), "--steps", "30", "--apply"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "suggested init_rate" in out and "steepest descent of the smoothed loss" in out and "┤" in out
    after = json.loads(hyper_path.read_text())
    assert list(after) == list(before)
    assert {k: v for k, v in after.items() if k != "init_rate"} == {k: v for k, v in before.items() if k != "init_rate"}
    run = next((hyper_path.parent.parent / "results").glob("*-lr_find"))
    record = json.loads((run / "run.json").read_text())
    assert after["init_rate"] == record["details"]["suggested_rate"] > 0
    assert (run / "lr_find.png").is_file() and record["task"] == "lr_find"


def test_lr_find_json_without_apply_leaves_the_file_alone(params_files, capsys):
    data_path, hyper_path = params_files(per_class=10)
    text = hyper_path.read_text()
    code = main(["lr-find", "--data", str(data_path), "--hyper", str(hyper_path), "--steps", "20", "--json",
                 "--set", "batch_size=4"])
    out, _ = capsys.readouterr()
    body = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and body["command"] == "lr-find" and body["suggested_rate"] > 0
    assert body["rule"] == "steepest descent of the smoothed loss" and "applied" not in body
    assert hyper_path.read_text() == text


def test_apply_rate_adds_init_rate_to_a_file_without_it(tmp_path: Path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"epochs": 3, "batch_size": 16}))
    apply_rate(path, 0.003)
    assert json.loads(path.read_text()) == {"epochs": 3, "batch_size": 16, "init_rate": 0.003}
