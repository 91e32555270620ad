"""Ctrl-C in a terminal reaches every process of the foreground group: with worker processes
(tuning --jobs 2, or a large parallel load) the main process must still decide, stop and save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cnn_tui.core.events import FoldEnd
from cnn_tui.core.runs.events_file import read_events
from cnn_tui.core.runs.folder import read_run

DEADLINE = 180.0


def test_ctrl_c_to_the_whole_group_during_parallel_tuning_saves_the_finished_folds(params_files, tmp_path):
    # fits long enough (about 10 s each) that a loaded machine still sends Ctrl-C well before the last one ends
    data, hyper = params_files(per_class=10, hyper={"init_rate": [0.02, 0.01], "num_filters": [4, 6], "epochs": 120,
                                                    "batch_size": 4})
    env = {**os.environ, "CNN_TUI_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", "tune", "--data", str(data), "--hyper", str(hyper),
                             "--cv", "2", "--jobs", "2", "--json"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    results = tmp_path / "results"
    deadline = time.monotonic() + DEADLINE
    run_dir: Path | None = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list(results.glob("*-tune")) if results.exists() else []
            run_dir = runs[0] if runs else None
            if run_dir and sum(isinstance(e, FoldEnd) for e in read_events(run_dir)) >= 2:
                break
            time.sleep(0.2)
        assert run_dir is not None and proc.poll() is None, "the search never got two fits done"
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground group
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err.decode(errors="replace")[-2000:]
    assert "Traceback" not in err.decode(errors="replace")
    record = read_run(run_dir)
    assert record["status"] == "stopped", record
    rows = (run_dir / "tuning_results.csv").read_text().splitlines()
    assert len(rows) - 1 >= 2  # the finished fits were saved
    assert json.loads(out)["status"] == "stopped"


def test_ctrl_c_to_the_whole_group_during_a_parallel_load_stops_the_load(tmp_path):
    """2,000 files are decoded by worker processes: Ctrl-C ends in 'loading stopped', not 'interrupted'."""
    from tests_support import TINY_HYPER, write_image_folder

    write_image_folder(tmp_path / "training", 2, 1500, 8, seed=1)
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"num_classes": 2, "train_dir": "training", "test_dir": "training", "image_size": 8}))
    hyper = tmp_path / "h.json"
    hyper.write_text(json.dumps(TINY_HYPER))
    env = {**os.environ, "CNN_TUI_WORKERS": "2", "CNN_TUI_CACHE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", "train", "--data", str(data), "--hyper", str(hyper)],
                            cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not list((tmp_path / "results").glob("*-train/events.jsonl")):
            time.sleep(0.05)  # the run folder exists: loading is under way (3,000 files take a few seconds)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text and "interrupted" not in text
    assert "loading stopped after" in text or "stopped by the user" in text  # a fast machine may have loaded it all
