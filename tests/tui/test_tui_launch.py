"""Starting the TUI: the command line routes to it, its first frame does not wait for TensorFlow,
and nothing written behind Textual's back (C++ logs, warnings) reaches the terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings

from cnn_tui.cli import main
from cnn_tui.tui.launch import UiLogHandler

from tui_helpers import make_app, status


def test_no_command_opens_the_tui_with_the_given_files(monkeypatch):
    calls = []
    monkeypatch.setattr("cnn_tui.tui.run_tui", lambda *args: calls.append(args) or 0)
    monkeypatch.setattr("cnn_tui.cli.has_terminal", lambda: True)  # pytest's stdin and stdout are not terminals
    assert main([]) == 0
    assert main(["--data", "d.json", "--hyper", "h.json", "--model", "m.keras"]) == 0
    assert calls == [(None, None, None), ("d.json", "h.json", "m.keras")]


def test_importing_the_tui_leaves_keras_for_later():
    code = textwrap.dedent("""
        import sys
        import cnn_tui.tui.app, cnn_tui.tui.launch
        heavy = sorted(m for m in ("keras", "tensorflow", "sklearn", "matplotlib", "scikeras") if m in sys.modules)
        print(",".join(heavy))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_writes_to_file_descriptors_go_to_the_log_not_the_terminal(tmp_path):
    """Inside a pseudo-terminal: fd 1 and 2 (TensorFlow's C++ logging, worker processes) land in the
    log; what Textual draws through sys.__stderr__ reaches the terminal."""
    log, seen = tmp_path / "tui.log", tmp_path / "terminal.txt"
    code = textwrap.dedent(f"""
        import os, pty, sys
        from pathlib import Path
        from cnn_tui.tui.launch import quiet_terminal
        master, slave = pty.openpty()
        os.dup2(slave, 1)
        os.dup2(slave, 2)
        with quiet_terminal(Path({str(log)!r})):
            os.write(2, b"C++ noise on fd 2\\n")
            os.write(1, b"noise on fd 1\\n")
            sys.__stderr__.write("drawn by Textual\\n")
            sys.__stderr__.flush()
        os.write(2, b"after the app\\n")
        import select, time
        got, deadline = b"", time.monotonic() + 10  # the pty may hand the bytes over in more than one read
        while b"after the app" not in got and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                got += os.read(master, 65536)
        Path({str(seen)!r}).write_bytes(got)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    terminal = seen.read_text()
    assert "drawn by Textual" in terminal and "after the app" in terminal
    assert "noise" not in terminal
    assert "C++ noise on fd 2" in log.read_text() and "noise on fd 1" in log.read_text()


async def test_python_warnings_show_in_the_log_view(in_tmp):
    app = make_app()
    handler = UiLogHandler(app)
    logging.getLogger().addHandler(handler)
    logging.captureWarnings(True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            warnings.warn("a library is unhappy", UserWarning, stacklevel=1)
            await pilot.pause()
            await pilot.pause()
            assert "py.warnings:" in status(app) and "a library is unhappy" in status(app)
    finally:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(handler)
