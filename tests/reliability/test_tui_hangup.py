"""The TUI in a real pseudo-terminal: a dropped SSH connection (SIGHUP) or a SIGTERM during training
leaves the history, the last checkpoint and run.json (stopped) on disk."""

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from cnn_tui.core.model import NetModel


def _open_terminal(rows: int, columns: int) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def _start(args: list[str], tmp_path: Path, slave: int) -> subprocess.Popen:
    env = {**os.environ, "CNN_TUI_LOG": str(tmp_path / "tui.log"), "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=tmp_path, env=env, start_new_session=True)
    os.close(slave)
    return proc


def _drain(master: int) -> None:
    try:
        while os.read(master, 65536):
            pass
    except (BlockingIOError, OSError):
        pass


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_hang_up_during_tui_training_saves_and_quits(params_files, tmp_path, sig):
    data, hyper = params_files(per_class=40, hyper={"epochs": 300, "batch_size": 4})
    master, slave = _open_terminal(30, 100)
    proc = _start(["--data", str(data), "--hyper", str(hyper)], tmp_path, slave)
    os.set_blocking(master, False)
    results = tmp_path / "results"
    try:
        deadline = time.monotonic() + 120
        runs: list[Path] = []
        while time.monotonic() < deadline and not runs:  # load, initialise, train: keys are ignored until possible
            for key in (b"l", b"i", b"t"):
                os.write(master, key)
                time.sleep(1.5)
                _drain(master)
            runs = list(results.glob("*-train")) if results.exists() else []
        assert runs, "training never started"
        history = runs[0] / "history.csv"
        while time.monotonic() < deadline and not (history.exists() and len(history.read_text().splitlines()) >= 2):
            time.sleep(0.5)
            _drain(master)
        assert json.loads((runs[0] / "run.json").read_text())["status"] == "running"
        proc.send_signal(sig)
        if sig == signal.SIGHUP:
            os.close(master)  # the terminal is gone too
            master = -1
        signalled = time.monotonic()
        while proc.poll() is None and time.monotonic() < signalled + 90:
            time.sleep(0.2)
            if master >= 0:
                _drain(master)
        assert proc.returncode is not None, "the TUI did not quit"
    finally:
        if proc.poll() is None:
            proc.kill()
        if master >= 0:
            os.close(master)
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["status"] == "stopped", record
    assert record["details"]["epochs_done"] >= 1
    assert len(history.read_text().splitlines()) >= 2
    assert NetModel.load(runs[0] / "model.keras").class_names == ["0", "1", "2"]
    assert f"{signal.Signals(sig).name}: stopping" in (tmp_path / "tui.log").read_text()


def test_a_terminal_reporting_no_size_still_opens(params_files, tmp_path):
    """Some terminals (an unset pty, serial consoles) report 0x0; image previews then switch off."""
    data, hyper = params_files()
    master, slave = pty.openpty()
    proc = _start(["--data", str(data), "--hyper", str(hyper)], tmp_path, slave)
    os.set_blocking(master, False)
    log = tmp_path / "tui.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "first frame" in log.read_text()):
        time.sleep(0.3)
        _drain(master)
    try:
        assert proc.poll() is None, "the TUI exited"
        assert "first frame" in log.read_text()
        assert "image previews off" in log.read_text()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
