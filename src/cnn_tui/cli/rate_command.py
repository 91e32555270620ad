"""``cnn-tui lr-find``: the learning-rate finder as a run, its curve as a text plot, ``--apply``."""

from __future__ import annotations

import argparse
import math
import threading
from typing import Any

from cnn_tui.cli.commands import (
    Ended,
    _check_training_folder,
    _detach,
    _ended,
    _load_params,
    _prepare,
    _run_foreground,
)
from cnn_tui.cli.console import CliConsole, make_table
from cnn_tui.core.runs.execute import Outcome, TaskSpec
from cnn_tui.core.training.lr_finder import RateSweep, apply_rate

PLOT_WIDTH, PLOT_HEIGHT = 60, 12


def text_plot(sweep: RateSweep, width: int = PLOT_WIDTH, height: int = PLOT_HEIGHT) -> list[str]:
    """The smoothed loss against log10(rate) in characters: ``*`` the curve, ``|`` the suggestion."""
    if len(sweep.rates) < 2:
        return []
    logs = [math.log10(r) for r in sweep.rates]
    low_x, high_x = logs[0], logs[-1]
    top = min(max(sweep.smoothed), sweep.smoothed[0] * 1.6)  # as the PNG: the exploding tail is cut
    bottom = min(sweep.smoothed)
    span = max(top - bottom, 1e-12)
    grid = [[" "] * width for _ in range(height)]

    def column(value: float) -> int:
        return min(width - 1, round((value - low_x) / max(high_x - low_x, 1e-12) * (width - 1)))

    if sweep.suggestion is not None:
        for row in grid:
            row[column(math.log10(sweep.suggestion))] = "|"
    for x, y in zip(logs, sweep.smoothed):
        if y <= top:
            grid[height - 1 - min(height - 1, round((y - bottom) / span * (height - 1)))][column(x)] = "*"
    lines = [f"{top:8.3g} ┤" + "".join(grid[0])]
    lines += ["         │" + "".join(row) for row in grid[1:-1]]
    lines.append(f"{bottom:8.3g} ┤" + "".join(grid[-1]))
    left, right = f"{sweep.rates[0]:.0e}", f"{sweep.rates[-1]:.2g}"
    lines.append("          " + left + " " * max(1, width - len(left) - len(right)) + right + "  (rate, log scale)")
    return lines


def _rate_result(console: CliConsole, outcome: Outcome, args: argparse.Namespace) -> dict[str, Any]:
    found = outcome.rates
    run = outcome.run
    summary: dict[str, Any] = {"run_id": run.path.name, "run_dir": str(run.path), "status": outcome.status,
                               "message": outcome.message, **outcome.details}
    if found is None:
        return summary
    sweep = found.result
    for line in text_plot(sweep):
        console.line(line)
    picks = sorted({0, len(sweep.rates) - 1, *range(0, len(sweep.rates), max(1, len(sweep.rates) // 8))})
    rows = [(f"{sweep.rates[i]:.3g}", f"{sweep.losses[i]:.4g}", f"{sweep.smoothed[i]:.4g}") for i in picks]
    console.table(make_table("Rate sweep", ["rate", "loss", "smoothed loss"], rows, right=[0, 1, 2]))
    for name, path in found.files.items():
        console.line(f"  {name:<8} {path}")
    summary["files"] = {k: str(v) for k, v in found.files.items()}
    rate = outcome.details.get("suggested_rate")
    if rate is not None:
        console.line(f"suggested init_rate {rate:g} ({sweep.rule})")
        if args.apply and outcome.status == "finished":
            apply_rate(args.hyper, rate)
            console.line(f"init_rate {rate:g} written into {args.hyper}")
            summary["applied"] = str(args.hyper)
    elif args.apply:
        raise Ended("no suggestion to apply: the sweep had too few batches (try --steps higher)",
                    {**summary, "error": "no suggestion"}, 1)
    return _ended(outcome, summary, stopped=f"{outcome.message} (run folder {run.path})",
                  failed=f"{outcome.message} (run folder {run.path})")


def cmd_lr_find(args: argparse.Namespace, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data, hyper = _load_params(args, console)
    _check_training_folder(data)
    spec = TaskSpec("lr_find", sweep_steps=args.steps)
    run = _prepare(args, spec, data, hyper)
    if args.detach:
        if args.apply:
            console.warn("--apply needs the sweep's end: with --detach, apply it yourself from the run's run.json")
        return _detach(run, console, "lr_find")
    return _rate_result(console, _run_foreground(run, spec, console, stop), args)
