"""The TUI in a real pseudo-terminal while it trains: training runs in a run process of its own, so a dropped
SSH connection (the terminal closes, SIGHUP) or a killed TUI ends the TUI quickly and the run goes on to
its end: run.json finished, every planned epoch in history.csv, the model saved."""

import os
import pty
import signal
import subprocess
import time
from pathlib import Path

from cnn_tui.core.models.model import NetModel
from cnn_tui.core.runs import control
from cnn_tui.core.runs.folder import effective_status, read_run

from pty_support import drain, open_terminal, start_tui, tui_log

EPOCHS = 30  # ~0.2-0.7 s each on 120 tiny images: the run outlives the TUI and still ends within a minute
EXIT_WITHIN = 20.0  # seconds from the hang-up to the TUI's exit (it gives up by itself after hangup.GRACE_S)
RUN_ENDS_WITHIN = 120.0  # generous: a loaded 2-core machine






def _epochs(run: Path) -> int:
    history = run / "history.csv"
    return max(0, len(history.read_text().splitlines()) - 1) if history.exists() else 0


def _train_in_the_tui(params_files, tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """Start the TUI in a pty, press l, i, t until a run folder appears, wait for its first epoch."""
    data, hyper = params_files(per_class=40, hyper={"epochs": EPOCHS, "batch_size": 4})
    master, slave = open_terminal(30, 100)
    proc = start_tui(["--data", str(data), "--hyper", str(hyper)], tmp_path, slave)
    os.set_blocking(master, False)
    results = tmp_path / "results"
    deadline = time.monotonic() + 120
    runs: list[Path] = []
    while time.monotonic() < deadline and not runs:  # load, initialise, train: keys are refused until possible
        for key in (b"l", b"i", b"t"):
            os.write(master, key)
            time.sleep(1.0)
            drain(master)
        runs = list(results.glob("*-train")) if results.exists() else []
        assert proc.poll() is None, f"the TUI exited:\n{tui_log(tmp_path)[-3000:]}"
    assert runs, f"training never started:\n{tui_log(tmp_path)[-3000:]}"
    run = runs[0]
    while time.monotonic() < deadline and _epochs(run) < 1:
        time.sleep(0.2)
        drain(master)
    assert _epochs(run) >= 1, f"no epoch in time:\n{tui_log(tmp_path)[-3000:]}"
    record = read_run(run)
    assert record["pid"] != proc.pid and effective_status(record) == "running"  # the run's own process
    assert _epochs(run) < EPOCHS, "the run ended before the test could cut the TUI off"
    return proc, master, run


def _wait_exit(proc: subprocess.Popen, master: int, timeout: float) -> float:
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() < start + timeout:
        time.sleep(0.1)
        if master >= 0:
            drain(master)
    return time.monotonic() - start


def _run_goes_on_to_its_end(run: Path) -> dict:
    deadline = time.monotonic() + RUN_ENDS_WITHIN
    while control.is_running(run) and time.monotonic() < deadline:
        time.sleep(0.5)
    record = read_run(run)
    assert record["status"] == "finished", record
    assert record["details"]["epochs_done"] == EPOCHS and _epochs(run) == EPOCHS
    assert NetModel.load(run / "model.keras").class_names == ["0", "1", "2"]
    return record


def test_a_dropped_connection_ends_the_tui_and_the_run_goes_on(params_files, tmp_path):
    """What an SSH drop does: the pty closes and the TUI gets SIGHUP."""
    proc, master, run = _train_in_the_tui(params_files, tmp_path)
    try:
        proc.send_signal(signal.SIGHUP)
        os.close(master)  # the terminal is gone too
        master = -1
        took = _wait_exit(proc, master, EXIT_WITHIN)
        assert proc.returncode is not None, f"the TUI still runs {EXIT_WITHIN:.0f}s later:\n{tui_log(tmp_path)[-3000:]}"
        print(f"the TUI exited {took:.1f}s after the hang-up; the run had {_epochs(run)} of {EPOCHS} epochs")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if master >= 0:
            os.close(master)
    assert f"SIGHUP: stopping to follow run {run.name} (it goes on) and quitting" in tui_log(tmp_path)
    record = _run_goes_on_to_its_end(run)
    assert record["command"] == "cnn-tui (TUI)"


def test_a_killed_tui_leaves_the_run_to_finish(params_files, tmp_path):
    proc, master, run = _train_in_the_tui(params_files, tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=10)
    finally:
        os.close(master)
    assert control.is_running(run) or read_run(run)["status"] == "finished"
    _run_goes_on_to_its_end(run)


def test_a_terminal_reporting_no_size_still_opens(params_files, tmp_path):
    """Some terminals (an unset pty, serial consoles) report 0x0; image previews then switch off."""
    data, hyper = params_files()
    master, slave = pty.openpty()
    proc = start_tui(["--data", str(data), "--hyper", str(hyper)], tmp_path, slave)
    os.set_blocking(master, False)
    log = tmp_path / "tui.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "first frame" in log.read_text()):
        time.sleep(0.3)
        drain(master)
    try:
        assert proc.poll() is None, "the TUI exited"
        assert "first frame" in log.read_text()
        assert "image previews off" in log.read_text()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)

