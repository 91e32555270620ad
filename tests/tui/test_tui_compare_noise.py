"""The compare screen's "test accuracy vs ★" row: within noise, beyond it, or cannot tell."""

import json
from pathlib import Path

import numpy as np

from cnn_tui.core.inspect.reports import write_predictions
from cnn_tui.core.training.evaluation import Evaluation
from cnn_tui.tui.screens.runs_compare import MISSING, noise_row, read_run_files


def evaluated(parent: Path, run_id: str, right: np.ndarray, files: list[str] | None = None) -> Path:
    folder = parent / run_id
    folder.mkdir(parents=True)
    n = len(right)
    y = np.arange(n) % 2
    predicted = np.where(right, y, 1 - y)
    p = np.full((n, 2), 0.1, dtype=np.float32)
    p[np.arange(n), predicted] = 0.9
    ev = Evaluation(["a", "b"], y, p, files or [f"/test/{i}.png" for i in range(n)], 1.0)
    write_predictions(ev, folder / "predictions.npz")
    (folder / "run.json").write_text(json.dumps({
        "run_id": run_id, "task": "evaluate", "status": "finished", "exit_code": 0, "seconds": 1.0,
        "details": {"accuracy": ev.accuracy}}))
    return folder


def test_near_identical_runs_are_within_noise_and_a_much_worse_one_beyond(tmp_path):
    rng = np.random.default_rng(2)
    right = rng.random(400) < 0.9
    nearly = right.copy()
    nearly[np.flatnonzero(right)[:2]] = False  # two more mistakes
    worse = right & (rng.random(400) < 0.7)
    folders = [evaluated(tmp_path, "best", right), evaluated(tmp_path, "nearly", nearly),
               evaluated(tmp_path, "worse", worse)]
    row = noise_row([read_run_files(f) for f in folders])
    assert row[0].startswith("★")
    assert row[1].startswith("within noise (-0.5 points")
    assert row[2].startswith("beyond noise")


def test_other_test_images_cannot_be_told_apart(tmp_path):
    right = np.ones(50, dtype=bool)
    folders = [evaluated(tmp_path, "one", right),
               evaluated(tmp_path, "two", right[:40], files=[f"/other/{i}.png" for i in range(40)])]
    runs = [read_run_files(f) for f in folders]
    row = noise_row(runs)
    assert "cannot tell (they were not tested on the same images)" in row
    assert noise_row(runs[:1]) is None  # one run: nothing to compare
    (folders[1] / "predictions.npz").unlink()
    assert "no test predictions" in " ".join(noise_row([read_run_files(f) for f in folders]))
    assert MISSING == "-"
