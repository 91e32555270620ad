"""``cnn-tui ensemble M1.keras M2.keras … --out E.keras``: models of the same classes and input as one
model averaging their probabilities; with ``--data``, the ensemble against its members on the test set."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser is built from here too: nothing heavy before a command runs
    from cnn_tui.cli.console import CliConsole  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs

Args = argparse.Namespace

EPILOG = """The ensemble is one .keras model: each member (its temperature applied when it has one), then the
mean of their probabilities. classify, evaluate, predict, --tta and export use it like any model.
Its metadata are the first member's (classes, image size, hyper params) and a record of the members.
With --data: each member and the ensemble on that data params' test set, accuracy and macro F1 with
95 % bootstrap intervals, and the ensemble minus its best member (a paired bootstrap: within noise
when its interval holds 0). An ensemble made before (e.g. a tune run's ensemble.keras) is compared
with its members by: cnn-tui ensemble E.keras --data D.json"""


def add_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("ensemble", "average models of the same classes and input into one .keras model", epilog=EPILOG)
    p.add_argument("models", nargs="+", metavar="MODEL.keras", help="two or more models saved by cnn-tui (or one "
                   "ensemble, with --data and no --out: compare it with its members)")
    p.add_argument("--out", metavar="E.keras", help="where to save the ensemble")
    p.add_argument("--data", metavar="D.json", help="evaluate the members and the ensemble on this test set")


def cmd_ensemble(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    from cnn_tui.cli.commands import _load_params  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.cli.console import make_table  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.data.dataset import load_data  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.errors import UserError  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.models.ensemble import MIN_MEMBERS, ensemble_files  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.models.model import NetModel  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.training.ensembles import compare  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs
    from cnn_tui.core.training.uncertainty import with_interval  # noqa: PLC0415 — built into the parser: Keras loads only when the command runs

    if args.out is None and not (len(args.models) == 1 and args.data):
        raise UserError(f"name where to save the ensemble with --out E.keras (or give one ensemble and --data to "
                        f"compare it with its members); an ensemble needs at least {MIN_MEMBERS} models")

    data = None
    if args.data:  # a mistake in the data params: one line before any model is loaded
        data, _ = _load_params(args, console, hyper=False)
    if args.out is None:
        net = NetModel.load(args.models[0])
        if not net.members:
            raise UserError("not an ensemble (it records no members); give two or more models and --out E.keras",
                            path=args.models[0])
    else:
        console.info(f"averaging {len(args.models)} models…")
        net = ensemble_files(args.models, args.out)
        console.line(f"saved the ensemble of {len(args.models)} models to {args.out}")
    result: dict[str, Any] = {"out": str(args.out or args.models[0]), "members": net.members}
    if data is None:
        return result
    with console.progress("loading the test folder"):
        test_set = load_data(data.with_values(image_size=net.image_size), "test", class_names=net.class_names,
                             channels=net.channels, emit=console.emit)
    if len(test_set) == 0:
        raise UserError("the test folder has no readable images", path=data.test_path)
    with console.progress("evaluating the members and the ensemble"):
        found = compare(net, test_set)
    rows = [(m.name, with_interval(m.accuracy.value, m.accuracy), with_interval(m.macro_f1.value, m.macro_f1, percent=False))
            for m in [*found.members, found.ensemble]]
    console.table(make_table(f"Ensemble against its members ({len(test_set)} test images, 95 % intervals)",
                             ["model", "accuracy", "macro F1"], rows, right=[1, 2]))
    diff = found.against_best.difference
    verdict = "within noise" if found.against_best.within_noise else ("better" if diff.value > 0 else "worse")
    console.line(f"ensemble − best member ({found.best_member.name}): {diff.value * 100:+.1f} points "
                 f"({diff.low * 100:+.1f} to {diff.high * 100:+.1f}): {verdict}")
    return {**result, "evaluation": found.as_dict()}
