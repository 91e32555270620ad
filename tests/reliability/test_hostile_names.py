"""File and class names that are not valid UTF-8 (Latin-1 disks, archives from elsewhere) load,
train, and are written to CSV, JSON and PNG with the odd bytes shown as \\xNN."""

from __future__ import annotations

import json
import os
import sys

import pytest

from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import read_run

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")


def test_a_pipeline_over_non_utf8_file_and_class_names(params_files, tmp_path):
    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
        os.rename(folder + b"/0/img_000.png", folder + b"/0/caf\xe9.png")
        with open(folder + b"/1/bad\xff.png", "wb") as handle:
            handle.write(b"not an image")
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("pipeline", validate=0.25), data, hyper, parent=tmp_path / "runs")
    outcome = control.run_here(run, TaskSpec.load(run.path))
    assert outcome.status == "finished", outcome.message
    assert read_run(run.path)["status"] == "finished"
    assert (run.path / "confusion_matrix.png").stat().st_size > 0
    matrix = (run.path / "confusion_matrix.csv").read_text(encoding="utf-8")
    assert "cl\\xe9ss" in matrix.splitlines()[0]
    assert "bad\\xff.png" in (run.path / "skipped_files.csv").read_text(encoding="utf-8")
    evaluation = json.loads((run.path / "evaluation.json").read_text(encoding="utf-8"))
    assert [row["label"] for row in evaluation["per_class"]][:3] == ["0", "1", "cl\udce9ss"]


async def test_the_tui_loads_and_shows_non_utf8_class_names(params_files, tmp_path, in_tmp):
    """Loading (l, L) and the Data view with a class folder named in Latin-1 (the screen is written as UTF-8)."""
    from tui_helpers import make_app, status, wait_idle

    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("L")
        await wait_idle(pilot)
        assert app.main.session.train_set.class_names == ["0", "1", "cl\udce9ss"]
        assert "test set: 18 images in 3 classes" in status(app)
        assert "cl\\xe9ss" in app.export_screenshot()  # drawn, as \xNN


def test_the_cli_prints_non_utf8_names_on_a_strict_utf8_terminal(params_files, tmp_path):
    """With a UTF-8 locale Python's stdout refuses surrogates: every table and line shows them as \\xNN."""
    import subprocess

    data_path, hyper_path = params_files()
    for part in ("training", "testing"):
        folder = os.fsencode(tmp_path / "data" / part)
        os.rename(folder + b"/2", folder + b"/cl\xe9ss")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "cnn_tui", "pipeline", "--data", str(data_path), "--hyper",
                           str(hyper_path)], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    out = done.stdout.decode("utf-8")  # strict: the output is valid UTF-8
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert "cl\\xe9ss" in out
    listed = subprocess.run([sys.executable, "-m", "cnn_tui", "runs"], cwd=tmp_path, env=env, capture_output=True,
                            timeout=120)
    assert listed.returncode == 0 and "pipeline" in listed.stdout.decode("utf-8")
