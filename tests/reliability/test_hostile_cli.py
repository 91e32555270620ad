"""Hostile input through the real CLI, as a table: each row is a way to break a promise of the
the guide's "When things go wrong" (docs/guide/troubleshooting.md), and every row is held to the same promise: the exit code it
names, one line on stderr naming the file or field, no traceback, no file written outside the
results folder, and no run left ``running``. Adding a case is one row.

The base case is small (3 classes, 12 training / 6 test images each at 12x12, 1 epoch)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cnn_tui.cli import main
from cnn_tui.core.runs.folder import effective_status, read_run


@dataclass
class Case:
    name: str
    args: list[str]  # {data} {hyper} {model} {tmp} are filled in
    code: int
    says: str  # a piece of the one line on stderr
    hyper: dict = field(default_factory=dict)  # changes to the base hyper params
    data: dict = field(default_factory=dict)  # changes to the base data params
    env: dict = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def _huge_grid() -> dict:
    return {name: list(range(1, 11)) for name in ("decay_steps", "kernel_size", "num_filters", "num_units", "epochs",
                                                   "batch_size", "momentum", "drop_out", "init_rate")}


def _a_file_named_out(tmp: Path) -> None:
    (tmp / "out").write_text("a file, not a folder")


def _a_fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "pipe.png")


CASES = [
    Case("huge grid", ["tune", "--data", "{data}", "--hyper", "{hyper}"], 2, "more than the limit of 1,000",
         hyper={**_huge_grid(), "momentum": [i / 20 for i in range(10)], "drop_out": [i / 20 for i in range(10)],
                "init_rate": [i / 100 for i in range(1, 11)]}),
    Case("huge grid, halving", ["tune", "--strategy", "halving", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "random strategy", hyper={"num_units": list(range(1, 41)), "num_filters": list(range(1, 41))}),
    Case("num_units beyond memory", ["train", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "layer 'dense' alone has", hyper={"num_units": 2147483647}),
    Case("num_filters beyond memory", ["summary", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "more than the free memory", hyper={"num_filters": 100000}),
    Case("kernel larger than the image", ["train", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "kernel_size 5 is larger", hyper={"kernel_size": 5}, data={"image_size": 8}),
    Case("validation with one image per class", ["train", "--validate", "0.2", "--data", "{data}", "--hyper", "{hyper}"],
         2, "validation", setup=lambda tmp: [p.unlink() for c in (tmp / "data" / "training").iterdir()
                                             for p in sorted(c.iterdir())[1:]]),
    Case("a 10-class model on 3-class data", ["evaluate", "--data", "{data}", "--model", "{model10}"], 2,
         "the model classifies 10 classes but the data params has 3"),
    Case("classify --top 0", ["classify", "--model", "{model3}", "--top", "0", "{tmp}/data/testing/0/img_000.png"], 2,
         "--top: must be at least 1"),
    Case("classify a folder", ["classify", "--model", "{model3}", "{tmp}/data"], 2, "is a folder, not an image file"),
    Case("classify a FIFO", ["classify", "--model", "{model3}", "{tmp}/pipe.png"], 2, "not a regular file",
         setup=_a_fifo),
    Case("--out is a file", ["train", "--out", "{tmp}/out", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "is a file, not a folder", setup=_a_file_named_out),
    Case("max-samples too small for the folds", ["tune", "--max-samples", "10", "--cv", "5", "--data", "{data}",
                                                 "--hyper", "{hyper}"], 2, "max-samples cap", hyper={"num_units": [8, 9]}),
    Case("a bad environment variable", ["train", "--data", "{data}", "--hyper", "{hyper}"], 2,
         "environment variable CNN_TUI_CACHE_MAX_MB must be a whole number", env={"CNN_TUI_CACHE_MAX_MB": "abc"}),
    Case("demo --app-input is a file", ["demo", "--dir", "{tmp}/d", "--app-input", "{tmp}/out"], 2,
         "cannot make the folder for the demo params", setup=_a_file_named_out),
    Case("a data path with brackets", ["train", "--data", "{tmp}/x[/y]/d.json", "--hyper", "{hyper}"], 2,
         "x[/y]/d.json"),
]


def _files_outside_results(tmp: Path) -> set[str]:
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*") if "results" not in p.relative_to(tmp).parts}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A 3-class and a 10-class model for 12x12 grayscale images, saved once for the module."""
    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.params.files import ModelConfig

    folder = tmp_path_factory.mktemp("models")
    config = ModelConfig(init_rate=0.02, decay_steps=400, decay_rate=0.9, kernel_size=3, num_filters=4, num_units=8,
                         momentum=0.9, drop_out=0.2, epochs=1, batch_size=8)
    return {f"model{n}": build_model(config, image_size=12, channels=1, class_names=[str(i) for i in range(n)])
            .save(folder / f"m{n}.keras") for n in (3, 10)}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_keeps_the_promise(case, params_files, tmp_path, capsys, monkeypatch, models):
    data, hyper = params_files(hyper={"num_filters": 4, "num_units": 8, "epochs": 1, "batch_size": 16, **case.hyper},
                               **case.data)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    if case.setup:
        case.setup(tmp_path)
    before = _files_outside_results(tmp_path)
    names = {"data": data, "hyper": hyper, "tmp": tmp_path, **models}
    argv = [a.format(**names) for a in case.args]
    try:
        code = main(argv)
    except SystemExit as exc:  # a usage error: argparse exits
        code = exc.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, err
    assert "Traceback" not in err and "Traceback" not in out
    assert lines and "error: " in lines[-1] and case.says in lines[-1], err
    assert _files_outside_results(tmp_path) == before  # nothing written (or left) beside the user's files
    for record_file in (tmp_path / "results").rglob("run.json"):
        record = read_run(record_file.parent)
        assert effective_status(record) != "running", record


def test_every_case_runs_in_json_mode_too(params_files, tmp_path, capsys):
    """Under --json a user mistake is one JSON object with the message and the exit code."""
    data, hyper = params_files(hyper={"kernel_size": 9})
    code = main(["train", "--json", "--data", str(data), "--hyper", str(hyper)])
    out, _ = capsys.readouterr()
    payload = json.loads(out)
    assert code == 2 and payload["exit_code"] == 2 and "kernel_size 9" in payload["error"]


def test_pipeline_holds_out_the_data_params_validation_split(params_files, tmp_path, capsys):
    data, hyper = params_files(hyper={"num_filters": 4, "num_units": 8, "epochs": 1}, validation_split=0.5)
    code = main(["pipeline", "--json", "--data", str(data), "--hyper", str(hyper)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    record = read_run(Path(payload["run_dir"]))
    assert record["details"]["validation_samples"] == 18 and record["details"]["samples"] == 18  # 36 images, half out
