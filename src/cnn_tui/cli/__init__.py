
"""``cnn-tui`` headless commands: the same engine as the TUI, for scripts, CI and benchmarks.

Exit codes: 0 done; 1 the run itself failed (e.g. training diverged);
2 a user mistake, explained in one line on stderr; 130 stopped by Ctrl-C,
SIGTERM or SIGHUP after saving what was done (a SIGHUP ignored when the command
started, as under ``nohup``, stays ignored).

Every task writes a run folder; ``--detach`` runs it in a process of its own
that outlives the terminal, and ``runs``, ``attach``, ``stop`` and ``resume``
list, follow, stop and continue runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, NoReturn

from cnn_tui import __version__
from cnn_tui.cli.ensemble_command import add_command as add_ensemble_command
from cnn_tui.cli.inspect_commands import add_commands as add_inspect_commands
from cnn_tui.cli.preset_commands import add_command as add_presets_command
from cnn_tui.core.environment import VARIABLES
from cnn_tui.core.errors import TaskStopped, UserError

EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_STOPPED = 0, 1, 2, 130


class UsageError(Exception):
    """A command line argparse refuses: ``prog`` names the (sub)command, ``usage`` is its own."""

    def __init__(self, message: str, prog: str, usage: str) -> None:
        super().__init__(message)
        self.message, self.prog, self.usage = message, prog, usage


class Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is raised to ``main``, which prints it as one line (or,
    under --json, as one JSON object) instead of exiting from inside the parser."""

    commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog, self.format_usage())


def _add_common(p: argparse.ArgumentParser, *, cache: bool = True,
                json_help: str = "print one JSON object with the results on stdout") -> None:
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--quiet", action="store_true", help="no progress or informational lines on stderr")
    if cache:
        p.add_argument("--no-cache", action="store_true", help="do not use or fill the decoded-image cache")


EPILOG = """runs outlive the terminal:
  cnn-tui train --data D.json --hyper H.json --detach   start a run in the background, print its id
  cnn-tui runs                                          list runs, newest first (status, params, metrics)
  cnn-tui attach RUN                                    show a run's progress (Ctrl-C detaches)
  cnn-tui stop RUN                                      stop a run; it saves what it has
  cnn-tui resume RUN                                    go on with a stopped or interrupted run
RUN is a run id, a unique prefix of one, or a run folder; runs are looked for in ./results
and in every --results DIR given.

exit codes: 0 done, 1 the run failed (e.g. diverged), 2 a user mistake (one line on stderr),
130 stopped (Ctrl-C, SIGTERM, SIGHUP) after saving what was done."""


def _environment_help() -> str:
    """The environment variables the program reads, from the one table of them."""
    width = max(len(name) for name, _ in VARIABLES)
    lines = [f"  {name:<{width}}  {text}" for name, text in VARIABLES]
    return "environment variables:\n" + "\n".join(lines)

RUN_HELP = "a run id, a unique prefix of one, or a run folder"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cnn-tui",
        description="Build, train, tune and evaluate convolutional image classifiers. "
        "Without a command, opens the terminal UI; the commands run the same engine headless.",
        usage="%(prog)s [--data D.json] [--hyper H.json] [--model M.keras]\n       %(prog)s COMMAND ...",
        epilog=f"{EPILOG}\n\n{_environment_help()}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnn-tui {__version__}")
    tui = parser.add_argument_group("terminal UI (no command)")
    tui.add_argument("--data", dest="tui_data", metavar="D.json", help="open the UI with these data params loaded")
    tui.add_argument("--hyper", dest="tui_hyper", metavar="H.json", help="open the UI with these hyper params loaded")
    tui.add_argument("--model", dest="tui_model", metavar="M.keras", help="open the UI with this model loaded")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # name -> its parser: an unknown option is reported with its command's usage

    def command(name: str, help_text: str, *, epilog: str | None = None, **common: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, prog=f"cnn-tui {name}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(p, **common)
        return p

    p = command("demo", "export scikit-learn's handwritten digits as PNG folders and write demo params")
    p.add_argument("--dir", default="datasets", help="where to put digits/{training,testing} (default: datasets)")
    p.add_argument("--app-input", default="app_input", help="where to write the demo JSON files (default: app_input)")

    p = command("split", "split one folder-per-class set into training/ and testing/ (stratified, seeded)",
                epilog="Files are hard-linked where the file system allows (else copied); originals are never\n"
                "moved or changed. OUT must be new or empty. It writes OUT/data_params.json for the result.\n"
                "validation/ is written only with --val > 0; the written params name it as val_dir, and training\n"
                "then validates on it instead of holding out validation_split. FOLDER may be a labels CSV\n"
                "(path,label[,split][,group]): a split column is obeyed; groups are never split apart.")
    p.add_argument("folder", metavar="FOLDER", help="a folder with one sub-folder of images per class, or a labels CSV")
    p.add_argument("--group-pattern", default="", metavar="REGEX",
                   help="class folders: the first group of REGEX in a file name is its group (e.g. '^(P\\d+)_'); "
                   "no group is split apart")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write training/, testing/ (new or empty)")
    p.add_argument("--test", type=float, default=0.2, metavar="SHARE", help="share of each class for testing (default 0.2)")
    p.add_argument("--val", type=float, default=0.0, metavar="SHARE",
                   help="share of each class for a validation/ folder (default 0: none)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the split (default 42)")
    p.add_argument("--copy", action="store_true", help="copy the files instead of hard-linking them")
    p.add_argument("--image-size", type=_at_least(4), metavar="N",
                   help="image_size of the written data params (default: the images' usual size, at most 224)")

    p = command("check", "data health: images per class, duplicates, train/test leakage, odd sizes, unreadable files",
                epilog="Exit codes: 0 nothing wrong, 1 something is (each finding one line), 2 a mistake in the\n"
                "files (no such folder, a wrong class count).")
    p.add_argument("--data", required=True, metavar="D.json", help="data params JSON (its training and test sets)")

    command("info", "versions, Keras backend and devices")

    p = command("summary", "the model summary table for a data + hyper params pair")
    _data_hyper(p)

    p = command("train", "train a new model (optionally with a validation hold-out)", epilog=TASK_EPILOG)
    _data_hyper(p)
    p.add_argument("--validate", type=_fraction, metavar="FRACTION", help="hold out this share for validation, e.g. 0.2")
    _calibrate(p)
    _operating(p)
    _out(p)
    _detach(p)

    for name, text in (
        ("evaluate", "test accuracy and loss of a saved model on the test folder"),
        ("predict", "confusion matrix and per-class report of a saved model on the test folder"),
    ):
        p = command(name, text, epilog="It writes a run folder (cnn-tui runs lists it).")
        p.add_argument("--data", required=True, metavar="D.json", help="data params JSON")
        p.add_argument("--model", required=True, metavar="M.keras", help="a model saved by cnn-tui (or any Keras image classifier)")
        _tta(p)
        _set(p, "a data params field")
        _out(p)

    p = command("threshold", "choose a saved model's decision threshold for one class on the data's validation "
                "share and write it into the model file",
                epilog="The validation share is the data params' val_dir (or the labels CSV's validation rows), "
                "else the validation_split hold-out of the training folder with the data's seed. Never the test set.")
    p.add_argument("--data", required=True, metavar="D.json", help="data params JSON (its validation share)")
    p.add_argument("--model", required=True, metavar="M.keras")
    _operating(p, required=True)
    p.add_argument("--write", metavar="OUT.keras", help="write the model with its threshold here (default: "
                   "replace M.keras, atomically)")
    _set(p, "a data params field")

    p = command("classify", "class and top probabilities for single image files")
    p.add_argument("--model", required=True, metavar="M.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=_at_least(1), default=3, help="how many classes to show (default 3)")
    _tta(p)

    p = command("export", "write a saved model as a TensorFlow SavedModel, ONNX or LiteRT file and check it "
                "predicts what the model does", epilog=EXPORT_EPILOG)
    p.add_argument("model", metavar="MODEL.keras", help="a model saved by cnn-tui (or any Keras image classifier)")
    p.add_argument("--format", required=True, choices=("saved_model", "onnx", "litert"))
    p.add_argument("--out", metavar="PATH", help="where to write it (default: beside the model: "
                   "MODEL_saved_model/, MODEL.onnx or MODEL.tflite)")
    p.add_argument("--data", metavar="D.json", help="check the export on this data params' test folder "
                   "(default: a built-in sample of 256 handwritten digits)")
    _set(p, "a data params field")

    p = command("tune", "search hyper params (every list-valued field) with stratified cross-validation",
                epilog=TASK_EPILOG)
    _data_hyper(p)
    p.add_argument("--cv", type=_at_least(2), default=3, help="folds (default 3)")
    p.add_argument("--strategy", choices=("grid", "random", "halving", "hyperband", "tpe"), default="grid",
                   help="grid: every combination; random: --n-iter of them; halving: rounds over images; "
                   "hyperband: rounds over epochs, the best third of each round trained on; tpe: --n-iter of them, "
                   "each proposed by Optuna's TPE sampler from the scores of those before (default grid)")
    p.add_argument("--n-iter", type=_at_least(1), default=10,
                   help="combinations to sample for --strategy random, or to propose for --strategy tpe")
    p.add_argument("--prune", choices=("none", "median"), default="none",
                   help="median: stop a fit whose validation accuracy after an epoch is below the median of the "
                   "fits that reached that epoch (default none)")
    p.add_argument("--max-samples", type=_at_least(10), default=10_000, help="stratified cap on training images")
    p.add_argument("--jobs", type=_at_least(1), default=1, help="fits at once, each in a worker process (default 1)")
    p.add_argument("--gpus", type=_gpu_list, metavar="0,1,...",
                   help="give each worker process one of these GPUs, round-robin (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the fits on a Dask cluster: tcp://HOST:8786 or tls://HOST:8786 (an existing "
                   "scheduler), or local:N (N workers on this machine, listening on 127.0.0.1 only)")
    p.add_argument("--cluster-security", metavar="FILE",
                   help="Dask TLS settings (a YAML file with tls-ca-file, tls-client-cert, tls-client-key); "
                   "default: Dask's own configuration")
    p.add_argument("--ensemble", action="store_true", help="keep the best combination's fold models and save "
                   "their average as ensemble.keras in the run folder")
    p.add_argument("--ensemble-top", type=_at_least(1), metavar="K",
                   help="--ensemble of the K best combinations' fold models (implies --ensemble)")
    _out(p)
    _detach(p)

    p = command("lr-find", "learning-rate finder: a sweep of the rate from 1e-7 until the loss explodes, "
                "its plot and a suggested init_rate", epilog=LR_FIND_EPILOG)
    _data_hyper(p)
    p.add_argument("--steps", type=_at_least(10), default=200, help="the most batches the sweep trains (default 200)")
    p.add_argument("--apply", action="store_true", help="write the suggested rate into the hyper params file as "
                   "init_rate (its other fields and their order kept)")
    _out(p)
    _detach(p)

    p = command("pipeline", "demo job: summary, training with validation, evaluation and confusion matrix",
                epilog=TASK_EPILOG)
    _data_hyper(p)
    p.add_argument("--validate", type=_fraction, metavar="FRACTION",
                   help="the share held out for validation (default: the data params' validation_split, 0.2)")
    _calibrate(p)
    _operating(p)
    _out(p)
    _detach(p)


    add_inspect_commands(sub, command)  # explain, features, predict --mistakes


    add_presets_command(command)  # presets [NAME]
    add_ensemble_command(command)  # ensemble M1.keras M2.keras … --out E.keras

    p = command("runs", "list the runs in ./results (and every --results DIR), newest first", cache=False,
                json_help="print a JSON list of the runs on stdout (one object per run)",
                epilog="Columns: id, status (running, finished, stopped, failed, interrupted), task, data folder,\n"
                "hyper params that differ from the defaults, metrics, start time, duration.\n"
                "With --json: a JSON list on stdout, one object per run (run_id, run_dir, task, status,\n"
                "started, seconds, message, data, params, metrics, pid, exit_code); an error is an object.")
    _results(p)

    p = command("compare", "runs' test accuracies side by side: within noise of the best, or beyond it", cache=False,
                epilog="Runs evaluated on the same test images are compared image by image (a paired bootstrap\n"
                "of the difference of their accuracies, 2000 resamples): 'within noise' means its 95 % interval\n"
                "holds 0, so the test set cannot tell them apart. Runs tested on different images: cannot tell.")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP)
    _results(p)

    p = command("attach", "show a run's progress: replay what it did, then follow it until it ends", cache=False,
                epilog="Ctrl-C detaches: the run goes on. The exit code is the run's own when it has ended\n"
                "(0 finished, 130 stopped, 1 failed or interrupted, 2 a user mistake), 0 when detached.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _results(p)

    p = command("stop", "stop a running run: it stops after the current batch, saves what it has and ends",
                cache=False, epilog="Exits 2 with one line when the run is not running (finished, unknown, "
                "ambiguous, another user's).")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _results(p)
    p.add_argument("--no-wait", action="store_true", help="return once asked, without waiting for the run to end")

    p = command("resume", "go on with a stopped or interrupted train, pipeline or tune run, in its own folder",
                epilog="Training goes on from its last whole epoch (with its optimizer state); a search keeps\n"
                "its finished fits and runs the rest. Prints what train, pipeline or tune print.")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _results(p)
    _detach(p)
    return parser


TASK_EPILOG = """It writes a run folder (the params, task.json, events.jsonl, results, run.json).
With --detach it runs in a process of its own that outlives this terminal: follow it with
`cnn-tui attach RUN`, stop it with `cnn-tui stop RUN`, go on after a stop with `cnn-tui resume RUN`."""


LR_FIND_EPILOG = """The rate grows exponentially from 1e-7, one step per batch, until the smoothed loss (an
exponential moving average with bias correction) is 4 times its minimum or the rate reaches 10.
The suggestion is the rate where the smoothed loss falls fastest (steepest descent against the
log of the rate). The run folder holds lr_find.png and lr_find.csv; the model is restored and
no model is saved. A backbone sweeps the phase that trains first (the head, backbone frozen)."""


EXPORT_EPILOG = """The artifact is written with Keras's model.export: saved_model is a folder (serving endpoint
"serve"), onnx an .onnx file (needs pip install 'cnn-tui[onnx]'), litert a .tflite file.
Then it is loaded with its own runtime and scores the same images as the Keras model: the
command prints the share of images whose top class agrees and the largest probability
difference, and warns below 99.9 % agreement."""


def _gpu_list(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",")]
    if not ids or not all(part.isdigit() for part in ids):
        raise argparse.ArgumentTypeError(f"expected GPU numbers separated by commas, like 0,1; got {text!r}")
    return ids


def _calibrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibrate", action="store_true",
                   help="after training, fit a temperature on the validation share so the probabilities match "
                   "how often the model is right; kept in the model file, used by classify, evaluate, predict, export")


def _operating(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--positive", metavar="CLASS", required=required,
                   help="choose this class's decision threshold on the validation share: it is predicted when its "
                   "probability reaches the threshold, else the likeliest other class; kept in the model file")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-recall", type=_target, metavar="R",
                        help="the threshold finds at least this share of the --positive class (default 0.95)")
    target.add_argument("--target-precision", type=_target, metavar="P",
                        help="instead: at least this share of its predictions are right")


def _target(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a target must lie in (0, 1], got {text}")
    return value


def _detach(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach", action="store_true",
                   help="run in the background (own process, output in the run's run.log); print the run id and return")


def _tta(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time augmentation: average each image's shifted (and, where the model was trained "
                   "with flips, mirrored) views (default: as the model file records, its hyper params' tta)")


def _results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", action="append", metavar="DIR",
                   help="a folder of run folders to look in, besides ./results (repeatable)")


def _data_hyper(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="D.json", help="data params JSON")
    p.add_argument("--hyper", required=True, metavar="H.json", help="hyper params JSON")
    _set(p, "a data or hyper params field")


def _set(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help=f"override {what} for this run, validated like the file (repeatable), "
                   "e.g. --set epochs=3 --set batch_size=128")


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
    A second Ctrl-C quits at once. A SIGHUP ignored when the command started (``nohup``)
    stays ignored: the user asked the run to survive the hangup."""
    installed: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        try:
            say(f"{name}: stopping after the current batch and saving what is done (Ctrl-C again to quit now)")
        except OSError:
            pass  # the terminal is gone (SIGHUP): stopping and saving matter, the message does not

    if threading.current_thread() is threading.main_thread():
        hangup = getattr(signal, "SIGHUP", None)
        for sig in (signal.SIGINT, signal.SIGTERM, hangup):
            if sig is None or (sig == hangup and signal.getsignal(sig) == signal.SIG_IGN):
                continue  # `nohup cnn-tui train ...`: the user asked the run to survive the hangup
            installed[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


@contextmanager
def detach_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """For commands that watch a run (attach, stop): Ctrl-C stops watching, never the run.
    A second Ctrl-C quits at once."""
    def handler(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


WATCHING = ("attach", "stop")  # commands that watch a run: Ctrl-C stops watching, the run goes on


def has_terminal() -> bool:
    """The TUI draws on stdout and reads keys from stdin: both must be a terminal."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout))


def parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's own parser, with its own usage line
        command = parser.commands.get(args.command) if args.command else None
        (command or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def usage_error(exc: UsageError, *, json_mode: bool) -> int:
    """argparse's usage and error line on stderr; under --json only the line there, and one JSON
    object on stdout, as for every other error."""
    line = f"{exc.prog}: error: {exc.message}"
    if json_mode:
        command = exc.prog.split(" ", 1)[1] if " " in exc.prog else None
        print(line, file=sys.stderr)
        print(json.dumps({"command": command, "exit_code": EXIT_USER, "error": line}), flush=True)
    else:
        sys.stderr.write(exc.usage)
        print(line, file=sys.stderr)
    return EXIT_USER


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parse(parser, argv)
    except UsageError as exc:
        return usage_error(exc, json_mode="--json" in argv)
    if args.command is None:
        if not has_terminal():  # `echo | cnn-tui`, `cnn-tui > file`: no screen to draw, no keys to read
            print("error: the terminal UI needs a terminal; see cnn-tui --help", file=sys.stderr)
            return EXIT_USER
        from cnn_tui.tui import run_tui  # noqa: PLC0415 — Textual loads only when the terminal UI opens

        return run_tui(args.tui_data, args.tui_hyper, args.tui_model)
    if getattr(args, "no_cache", False):
        os.environ["CNN_TUI_CACHE"] = "0"

    from cnn_tui.cli import commands, data_commands, ensemble_command, exporting, manage, preset_commands, rate_command  # noqa: PLC0415 — the commands and the engine load after parsing: --help does not wait
    from cnn_tui.cli.console import CliConsole  # noqa: PLC0415 — the commands and the engine load after parsing: --help does not wait
    from cnn_tui.core.fileio import json_default, without_nan  # noqa: PLC0415 — the commands and the engine load after parsing: --help does not wait

    console = CliConsole(json_mode=args.json, quiet=args.quiet)
    stop = threading.Event()
    handler = f"cmd_{args.command.replace('-', '_')}"
    run = next(getattr(module, handler) for module in (commands, data_commands, exporting, manage, preset_commands,
                                                        rate_command, ensemble_command) if hasattr(module, handler))
    code: int = EXIT_OK
    result: Any = {}
    if args.command in WATCHING:
        signals: Any = detach_on_interrupt(stop)
    elif args.command == "runs":
        signals = nullcontext()
    else:
        signals = stop_on_signals(stop, console.warn)
    try:
        with signals:
            result = run(args, console, stop)
    except UserError as exc:
        code, result = EXIT_USER, {"error": str(exc)}
        console.error(str(exc))
    except commands.Ended as exc:  # a run that ended stopped (130), failed (1) or by a user mistake (2)
        code, result = exc.code, exc.result
        (console.warn if code == EXIT_STOPPED else console.error)(exc.message)
    except TaskStopped as exc:  # stopped before a run folder existed
        code, result = EXIT_STOPPED, {"error": str(exc)}
        console.warn(str(exc))
    except KeyboardInterrupt:
        code, result = EXIT_STOPPED, {"error": "interrupted"}
        console.error("interrupted")
    if args.json:
        if isinstance(result, list):  # runs --json: the list itself
            body: Any = without_nan(result)
        else:
            body = {"command": args.command, "exit_code": code, **without_nan(result)}
        try:
            print(json.dumps(body, default=json_default, allow_nan=False), flush=True)
        except BrokenPipeError:  # `cnn-tui runs --json | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
