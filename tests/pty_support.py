"""The TUI in a real pseudo-terminal, for the tests where the terminal itself matters (hang-ups, kills)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path


def open_terminal(rows: int = 30, columns: int = 100) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def _take_as_controlling_terminal() -> None:  # in the child, after setsid: stdin becomes its controlling terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def start_tui(args: list[str], tmp_path: Path, slave: int, *, controlling: bool = False) -> subprocess.Popen:
    """``cnn-tui ARGS`` on the pty's slave side, logging to ``tmp_path/tui.log``."""
    env = {**os.environ, "CNN_TUI_LOG": str(tmp_path / "tui.log"), "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=tmp_path, env=env, start_new_session=True,
                            preexec_fn=_take_as_controlling_terminal if controlling else None)
    os.close(slave)
    return proc


def drain(master: int) -> None:
    """Read what the app drew, so it never blocks on a full terminal."""
    try:
        while os.read(master, 65536):
            pass
    except (BlockingIOError, OSError):
        pass


def tui_log(tmp_path: Path) -> str:
    path = tmp_path / "tui.log"
    return path.read_text(errors="replace") if path.exists() else ""
