"""Start the TUI: quiet the terminal, log what libraries print, run the app.

Textual draws on the terminal through ``sys.__stderr__``. TensorFlow's C++ code,
worker processes and stray prints write to file descriptors 1 and 2 behind
Python's back and would garble the screen, so while the app runs those two
descriptors point at a log file and Textual gets its own copy of the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

STARTED = time.perf_counter()


def log_file() -> Path:
    """``$CNN_TUI_LOG``, else ``~/.cache/cnn-tui/tui.log`` (beside the image cache)."""
    if configured := os.environ.get("CNN_TUI_LOG"):
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cnn-tui" / "tui.log"


class UiLogHandler(logging.Handler):
    """Python warnings and library log records go to the UI's log view, not the terminal."""

    def __init__(self, app: object) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        from cnn_tui.tui.messages import LogLine

        screen = getattr(self.app, "main", None)
        if screen is None:
            return
        first_line = record.getMessage().strip().splitlines()[0] if record.getMessage().strip() else record.name
        screen.post_message(LogLine(f"{record.name}: {first_line}"[:300]))  # thread-safe


def setup_logging(path: Path) -> Path | None:
    logging.captureWarnings(True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


@contextmanager
def quiet_terminal(path: Path | None) -> Iterator[None]:
    """Point fds 1 and 2 at the log while Textual keeps drawing on a duplicate of the terminal."""
    if path is None or not (sys.__stderr__ and sys.__stderr__.isatty()):
        yield
        return
    saved = {1: os.dup(1), 2: os.dup(2)}
    originals = (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr)
    encoding = sys.__stderr__.encoding or "utf-8"
    terminal_out = os.fdopen(os.dup(saved[1]), "w", encoding=encoding, errors="replace")
    terminal_err = os.fdopen(os.dup(saved[2]), "w", encoding=encoding, errors="replace")
    sys.__stdout__ = sys.stdout = terminal_out  # type: ignore[misc]
    sys.__stderr__ = sys.stderr = terminal_err  # type: ignore[misc]
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            for stream in (terminal_out, terminal_err):
                stream.flush()
            os.dup2(saved[1], 1)
            os.dup2(saved[2], 2)
            for fd in saved.values():
                os.close(fd)
            sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr = originals  # type: ignore[misc]
            terminal_out.close()
            terminal_err.close()


def run_tui(data: str | None = None, hyper: str | None = None, model: str | None = None) -> int:
    from cnn_tui.tui import terminal

    log = logging.getLogger("cnn_tui.tui")
    probe = terminal.Probe.start()  # the terminal answers while the app imports
    try:
        path = setup_logging(log_file())
        from cnn_tui.tui.app import CnnApp
    finally:
        graphics = probe.finish()
    if graphics is not None and graphics.problem:
        log.warning("image previews %s: %s", "off" if graphics.protocol is None else "in half blocks", graphics.problem)
        if graphics.protocol is None:
            os.environ["CNN_TUI_IMAGES"] = "none"

    log.info("imports done %.2fs after launch (images: %s)", time.perf_counter() - STARTED,
             graphics.protocol if graphics else "no terminal")
    app = CnnApp(data=Path(data) if data else None, hyper=Path(hyper) if hyper else None,
                 model=Path(model) if model else None, log_path=path)
    handler = UiLogHandler(app)
    logging.getLogger().addHandler(handler)
    try:
        with quiet_terminal(path):
            app.run()
    finally:
        logging.getLogger().removeHandler(handler)
    code = app.return_code or 0
    backend = sys.modules.get("cnn_tui.core.backend")
    if backend is None or not backend.is_loaded():
        # Quit while Keras was still importing in the background: no task ran, nothing is left to
        # save, and Python would otherwise wait seconds for the import thread before exiting.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code
