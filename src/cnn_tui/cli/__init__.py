"""``cnn-tui`` headless commands: the same engine as the TUI, for scripts, CI and benchmarks.

Exit codes: 0 done; 1 the run itself failed (e.g. training diverged);
2 a user mistake, explained in one line on stderr; 130 stopped by Ctrl-C,
SIGTERM or SIGHUP after saving what was done.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from cnn_tui import __version__

EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_STOPPED = 0, 1, 2, 130


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress or informational lines on stderr")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the decoded-image cache")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-tui",
        description="Build, train, tune and evaluate convolutional image classifiers. "
        "Without a command, opens the terminal UI; the commands run the same engine headless.",
        usage="%(prog)s [--data D.json] [--hyper H.json] [--model M.keras]\n       %(prog)s COMMAND ...",
    )
    parser.add_argument("--version", action="version", version=f"cnn-tui {__version__}")
    tui = parser.add_argument_group("terminal UI (no command)")
    tui.add_argument("--data", dest="tui_data", metavar="D.json", help="open the UI with these data params loaded")
    tui.add_argument("--hyper", dest="tui_hyper", metavar="H.json", help="open the UI with these hyper params loaded")
    tui.add_argument("--model", dest="tui_model", metavar="M.keras", help="open the UI with this model loaded")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p)
        return p

    p = command("demo", "export scikit-learn's handwritten digits as PNG folders and write demo params")
    p.add_argument("--dir", default="datasets", help="where to put digits/{training,testing} (default: datasets)")
    p.add_argument("--app-input", default="app_input", help="where to write the demo JSON files (default: app_input)")

    command("info", "versions, Keras backend and devices")

    p = command("summary", "the model summary table for a data + hyper params pair")
    _data_hyper(p)

    p = command("train", "train a new model (optionally with a validation hold-out)")
    _data_hyper(p)
    p.add_argument("--validate", type=_fraction, metavar="FRACTION", help="hold out this share for validation, e.g. 0.2")
    _out(p)

    for name, text in (
        ("evaluate", "test accuracy and loss of a saved model on the test folder"),
        ("predict", "confusion matrix and per-class report of a saved model on the test folder"),
    ):
        p = command(name, text)
        p.add_argument("--data", required=True, metavar="D.json", help="data params JSON")
        p.add_argument("--model", required=True, metavar="M.keras", help="a model saved by cnn-tui (or any Keras image classifier)")
        _out(p)

    p = command("classify", "class and top probabilities for single image files")
    p.add_argument("--model", required=True, metavar="M.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")

    p = command("tune", "search hyper params (every list-valued field) with stratified cross-validation")
    _data_hyper(p)
    p.add_argument("--cv", type=_at_least(2), default=3, help="folds (default 3)")
    p.add_argument("--strategy", choices=("grid", "random", "halving"), default="grid")
    p.add_argument("--n-iter", type=_at_least(1), default=10, help="combinations to sample for --strategy random")
    p.add_argument("--max-samples", type=_at_least(10), default=10_000, help="stratified cap on training images")
    p.add_argument("--jobs", type=_at_least(1), default=1, help="fits in parallel worker processes")
    _out(p)

    p = command("pipeline", "demo job: summary, training with validation, evaluation and confusion matrix")
    _data_hyper(p)
    p.add_argument("--validate", type=_fraction, default=0.2, metavar="FRACTION")
    _out(p)
    return parser


def _data_hyper(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="D.json", help="data params JSON")
    p.add_argument("--hyper", required=True, metavar="H.json", help="hyper params JSON")


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="parent folder for the run folder (default: result_dir or ./results)")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


@contextmanager
def stop_on_signals(stop: threading.Event, say: Callable[[str], None]) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (a dropped SSH session) ask the task to stop and save.
    A second Ctrl-C quits at once."""
    installed: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        say(f"{name}: stopping after the current batch and saving what is done (Ctrl-C again to quit now)")

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                installed[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from cnn_tui.tui import run_tui

        return run_tui(args.tui_data, args.tui_hyper, args.tui_model)
    if args.no_cache:
        os.environ["CNN_TUI_CACHE"] = "0"

    from cnn_tui.cli.console import CliConsole
    from cnn_tui.cli import commands
    from cnn_tui.core.dataset import TaskStopped
    from cnn_tui.core.fileio import json_default
    from cnn_tui.core.errors import UserError

    console = CliConsole(json_mode=args.json, quiet=args.quiet)
    stop = threading.Event()
    run = getattr(commands, f"cmd_{args.command}")
    code, result = EXIT_OK, {}
    try:
        with stop_on_signals(stop, console.warn):
            result = run(args, console, stop)
    except UserError as exc:
        code, result = EXIT_USER, {"error": str(exc)}
        console.error(str(exc))
    except commands.Stopped as exc:
        code, result = EXIT_STOPPED, exc.result
        console.warn(exc.message)
    except TaskStopped as exc:  # stopped before a run folder existed (while loading images)
        code, result = EXIT_STOPPED, {"error": str(exc)}
        console.warn(str(exc))
    except commands.Failed as exc:
        code, result = EXIT_FAILED, exc.result
        console.error(exc.message)
    except KeyboardInterrupt:
        code, result = EXIT_STOPPED, {"error": "interrupted"}
        console.error("interrupted")
    if args.json:
        print(json.dumps({"command": args.command, "exit_code": code, **result}, default=json_default, allow_nan=False))
    return code


def clean_json(value: Any) -> Any:
    """NaN is not JSON: replace it with null all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
