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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

from rich.console import Console

from cnn_tui.core.places import log_folder
from cnn_tui.tui import terminal
from cnn_tui.tui.started import STARTED


def log_file() -> Path:
    """``$CNN_TUI_LOG``, else ``tui.log`` in the platform's log folder (``~/.local/state/cnn-tui/log``)."""
    if configured := os.environ.get("CNN_TUI_LOG"):
        return Path(configured)
    return log_folder() / "tui.log"


class UiLogHandler(logging.Handler):
    """Python warnings and library log records go to the UI's log view, not the terminal."""

    def __init__(self, app: object) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        from cnn_tui.tui.messages import LogLine  # noqa: PLC0415 — Textual: not imported before the terminal probe is sent

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


_ABANDONED: list[object] = []  # terminal streams never closed (nor collected): closing flushes, which could block


@contextmanager
def quiet_terminal(path: Path | None, terminal_gone: threading.Event | None = None) -> Iterator[None]:
    """Point fds 1 and 2 at the log while Textual keeps drawing on a duplicate of the terminal.
    Once ``terminal_gone`` is set, nothing more is written to the terminal, not even on the way out."""
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
            gone = terminal_gone is not None and terminal_gone.is_set()
            if gone:
                # fds 1 and 2 stay on the log, and the terminal streams are left alone: Textual's writer
                # thread may still be stuck in a write to a frozen terminal, holding their lock
                _ABANDONED.extend((terminal_out, terminal_err))
            else:
                for stream in (terminal_out, terminal_err):
                    try:
                        stream.flush()
                    except (OSError, ValueError):  # the terminal went on the way out
                        pass
                os.dup2(saved[1], 1)
                os.dup2(saved[2], 2)
            for fd in saved.values():
                os.close(fd)
            sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr = originals  # type: ignore[misc]
            if not gone:
                for stream in (terminal_out, terminal_err):
                    try:
                        stream.close()
                    except (OSError, ValueError):
                        pass


def plain_text(renderable: object) -> str:

    console = Console(file=StringIO(), width=100, color_system=None)
    console.print(renderable)
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def run_tui(data: str | None = None, hyper: str | None = None, model: str | None = None) -> int:
    log = logging.getLogger("cnn_tui.tui")
    probe = terminal.Probe.start()  # the terminal answers while the app imports
    try:
        path = setup_logging(log_file())
        from cnn_tui.tui import hangup  # noqa: PLC0415 — imported while the terminal answers the probe
        from cnn_tui.tui.app import CnnApp  # noqa: PLC0415 — imported while the terminal answers the probe
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
    # a terminal that goes away stops the drawing and ends the process within seconds (see tui.hangup)
    guard = hangup.guard_terminal(app)
    failed = False
    try:
        with quiet_terminal(path, guard.gone if guard is not None else None):
            app.run()
    except Exception:
        if guard is None or guard.ending is None:
            raise
        # e.g. Textual printing an error on the terminal that is gone (EIO): only the log can tell
        log.exception("%s: the app ended with an error", guard.ending)
        for renderable in getattr(app, "_exit_renderables", ()):  # the error Textual could not print
            log.error("%s", plain_text(renderable))
        failed = True
    finally:
        if guard is not None:
            guard.close()
        logging.getLogger().removeHandler(handler)
    code = 1 if failed else app.return_code or 0
    backend = sys.modules.get("cnn_tui.core.backend")
    keras_loaded = backend is not None and backend.is_loaded()
    if guard is not None and guard.ending is not None:
        # after a hang-up or SIGTERM: no interpreter finalization (see tui.hangup); the clean-up as below
        guard.leave(code, clean_up=keras_loaded)
    if not keras_loaded:
        # Quit while Keras was still importing in the background: no task ran, nothing is left to
        # save, and Python would otherwise wait seconds for the import thread before exiting.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code
