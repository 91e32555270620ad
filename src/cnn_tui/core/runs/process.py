"""The process of a detached run: ``python -m cnn_tui.core.runs.process RUN_DIR``.

``control.launch`` starts it in a session of its own with stdin from
/dev/null and its output in ``run.log``, so closing the terminal, logging out or
quitting the TUI does not reach it. It executes the task its ``task.json`` names
in the run's session (``control.run_here``: claimed, beating, its events written,
ended, released), and exits with the run's exit code. SIGTERM and SIGINT
(``cnn-tui stop``) ask it to stop after the current batch and save; SIGHUP is
ignored, as it no longer has a terminal to lose.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from pathlib import Path

from cnn_tui.core.errors import UserError
from cnn_tui.core.runs.control import run_here
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import Run, RunBusy
from cnn_tui.core.runs.lifecycle import EXIT_STOPPED, EXIT_USER, ending_of


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cnn_tui.core.runs.process RUN_DIR", file=sys.stderr)
        return EXIT_USER
    stop = threading.Event()

    def ask_to_stop(signum: int, _frame: object) -> None:
        print(f"{signal.Signals(signum).name}: stopping after the current batch", file=sys.stderr, flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        run = Run.open(Path(argv[0]))
        spec = TaskSpec.load(run.path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    try:
        outcome = run_here(run, spec, stop=stop)
    except RunBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except BaseException as exc:  # the run is marked already; the log keeps the details
        status, message, code = ending_of(exc)
        if code not in (EXIT_USER, EXIT_STOPPED):
            traceback.print_exc()
        print(f"{status}: {message}", file=sys.stderr)
        return code
    print(f"{outcome.status}: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
