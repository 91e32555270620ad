"""The TUI in a real pseudo-terminal whose terminal goes away: it stops drawing and the process exits
within seconds, whether it is told (SIGHUP, SIGTERM) or the terminal simply vanishes (see tui/hangup.py)."""

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from pty_support import drain, open_terminal, start_tui, tui_log

EXIT_WITHIN = 20.0  # seconds; the app itself gives up after hangup.GRACE_S, the rest is slack for a loaded CI machine


class Tui:
    """A TUI started on the tiny data set, its pty master, and what the test does to its terminal."""

    def __init__(self, params_files, tmp_path: Path, *, controlling: bool = False, **data) -> None:
        data_path, hyper_path = params_files(**data)
        self.tmp_path = tmp_path
        self.master, slave = open_terminal()
        self.proc = start_tui(["--data", str(data_path), "--hyper", str(hyper_path)], tmp_path, slave,
                              controlling=controlling)
        os.set_blocking(self.master, False)

    def wait_first_frame(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "first frame" not in tui_log(self.tmp_path):
            assert self.proc.poll() is None, f"the TUI exited early:\n{tui_log(self.tmp_path)}"
            time.sleep(0.2)
            drain(self.master)
        assert "first frame" in tui_log(self.tmp_path), "no first frame"
        time.sleep(0.5)  # the views mounted right after the first frame
        drain(self.master)

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close_terminal(self) -> None:
        os.close(self.master)
        self.master = -1

    def wait_exit(self, timeout: float = EXIT_WITHIN, reading: bool = True) -> float:
        """Seconds until the process ended; fails the test past ``timeout``."""
        start = time.monotonic()
        while self.proc.poll() is None and time.monotonic() < start + timeout:
            time.sleep(0.1)
            if reading and self.master >= 0:
                drain(self.master)
        elapsed = time.monotonic() - start
        print(f"exited {elapsed:.1f}s later, code {self.proc.returncode}")
        assert self.proc.returncode is not None, (f"the TUI still runs {timeout:.0f}s after its terminal went "
                                                  f"away:\n{tui_log(self.tmp_path)[-3000:]}")
        return elapsed

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master >= 0:
            os.close(self.master)


@pytest.fixture
def tui(params_files, tmp_path):
    started: list[Tui] = []

    def start(**kwargs) -> Tui:
        started.append(Tui(params_files, tmp_path, **kwargs))
        return started[-1]

    yield start
    for one in started:
        one.cleanup()


@pytest.mark.parametrize("state", ["idle", "keras-ready", "loading"])
def test_sighup_and_a_closed_terminal_end_the_process(tui, tmp_path, state):
    """What an SSH drop does: SIGHUP, and the pty closes."""
    busy = state == "loading"
    app = tui(**({"per_class": 150, "size": 24} if busy else {}))
    app.wait_first_frame()
    if state == "keras-ready":  # Keras imported in the background: leaving then also joins threads, runs atexit
        deadline = time.monotonic() + 60
        while "Keras ready" not in tui_log(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.3)
            drain(app.master)
        assert "Keras ready" in tui_log(tmp_path)
    if busy:
        app.press(b"l")  # load the training set: a short in-process task that checks its stop flag
        time.sleep(0.3)
    app.proc.send_signal(signal.SIGHUP)
    app.close_terminal()
    app.wait_exit()
    assert "SIGHUP: stopping" in tui_log(tmp_path)


@pytest.mark.parametrize("controlling", [False, True], ids=["not-controlling", "controlling"])
def test_a_terminal_that_vanishes_without_a_signal_ends_the_process(tui, tmp_path, controlling):
    """Only the pty closes. As the process's controlling terminal, the kernel sends it SIGHUP; otherwise
    (stdio on a pty it never took as controlling terminal, as here by default) nothing is signalled, and the
    app must notice by itself that its terminal hung up."""
    app = tui(controlling=controlling)
    app.wait_first_frame()
    app.close_terminal()
    app.wait_exit()
    log = tui_log(tmp_path)
    assert "SIGHUP: stopping" in log
    if not controlling:  # noticed by the app itself: POLLHUP on the terminal, or a write that failed (EIO)
        assert "terminal gone (" in log


def test_sigterm_with_the_terminal_open_ends_the_process(tui, tmp_path):
    app = tui()
    app.wait_first_frame()
    app.proc.send_signal(signal.SIGTERM)
    app.wait_exit()
    assert "SIGTERM: stopping" in tui_log(tmp_path)


def test_sigterm_while_the_terminal_reads_nothing_ends_the_process(tui, tmp_path):
    """A terminal that stopped reading (a frozen SSH link, a suspended emulator) blocks Textual's writes; once
    leaving, the app stops drawing on it (or, failing that, the watchdog ends the process)."""
    app = tui(controlling=True)  # SIGWINCH goes to the foreground process group of a controlling terminal
    app.wait_first_frame()
    for size in range(30):  # each resize repaints the whole screen (~20 kB); read nothing: the output gets stuck
        fcntl.ioctl(app.master, termios.TIOCSWINSZ, struct.pack("HHHH", 30 + size % 2, 100 + size % 2, 0, 0))
        time.sleep(0.05)
    time.sleep(0.5)
    app.proc.send_signal(signal.SIGTERM)
    app.wait_exit(reading=False)
    log = tui_log(tmp_path)
    assert "SIGTERM: leaving" in log
    assert "while we leave): drawing stops" in log or "ending the process now" in log


# ---- the watchdog alone, in a plain process whose main thread never lets the app leave

_STUCK = """
import asyncio, ctypes, logging, os, signal, sys, time
logging.basicConfig(filename=sys.argv[1], level=logging.INFO)
from cnn_tui.tui import hangup
hangup.GRACE_S = 0.5
hangup.BACKSTOP_S = 0.5

async def main():
    hangup.Guard().watch(lambda name: None)  # asked to leave, this "app" never does
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the guardian thread arms the watchdog
    if sys.argv[2] == "gil":
        ctypes.PyDLL(None).sleep(30)  # a C call that never gives the GIL back: no Python thread can run
    else:
        time.sleep(30)

asyncio.run(main())
"""


@pytest.mark.parametrize("stuck", ["sleeping", "gil"])
def test_the_watchdog_ends_a_process_that_does_not_leave(tmp_path, stuck):
    log = tmp_path / "log"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _STUCK, str(log), stuck], timeout=EXIT_WITHIN, capture_output=True)
    assert time.monotonic() - start < 10
    if stuck == "sleeping":  # the watchdog thread: a log line, exit code 128 + SIGTERM
        assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
        assert "ending the process now" in log.read_text()
    else:  # the kernel's timer: SIGALRM's default action
        assert proc.returncode == -signal.SIGALRM, proc.stderr
