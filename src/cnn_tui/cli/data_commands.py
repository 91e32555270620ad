"""The data commands: ``split`` a class-folder set, ``check`` a data-params pair of sets.

Thin clients of ``core.data.split`` and ``core.data.health``: they print tables and one line per
finding, and return the result dict ``--json`` prints.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from cnn_tui.cli.commands import Ended
from cnn_tui.cli.console import CliConsole, make_table
from cnn_tui.core.data.health import check_data
from cnn_tui.core.data.split import split_folder
from cnn_tui.core.params.files import DataParams

Args = argparse.Namespace


def cmd_split(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    result = split_folder(args.folder, args.out, test=args.test, val=args.val, seed=args.seed, copy=args.copy,
                          image_size=args.image_size, stop=stop, group_pattern=args.group_pattern)
    parts = result.parts
    rows = [(name, *(result.counts[p][k] for p in parts)) for k, name in enumerate(result.class_names)]
    rows.append(("total", *(sum(result.counts[p]) for p in parts)))
    console.table(make_table(f"split of {result.source}", ["class", *parts], rows, right=range(1, len(parts) + 1)))
    how = f"{result.linked} hard links, {result.copied} copies" if result.linked else f"{result.copied} copies"
    console.line(f"wrote {result.out} ({how}; the originals are untouched)")
    if result.fixed:
        console.line("  parts        as the CSV's split column says (--test and --val are not used)")
    if result.groups and not result.straddling:
        console.line(f"  groups       {result.groups}, each in one part only")
    elif result.groups:
        console.warn(f"the CSV's split column puts {len(result.straddling)} of {result.groups} groups in two parts "
                     f"(leakage), e.g. {result.straddling[0]}; `check` lists their files")
    console.line(f"  data params  {result.data_params}  (image_size {result.image_size})")
    if result.skipped:
        console.warn(f"{len(result.skipped)} file(s) or CSV row(s) that are not usable images were left out, e.g. "
                     f"{result.skipped[0].path}: {result.skipped[0].reason}")
    console.line(f"  next         cnn-tui check --data {result.data_params}")
    return result.as_dict()


def cmd_check(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    data = DataParams.load(args.data)
    for warning in data.warnings:
        console.warn(warning)
    with console.progress("checking images"):
        report = check_data(data, emit=console.emit, stop=stop)
    for health in report.sets:
        rows = [(name, count) for name, count in zip(health.class_names, health.counts)]
        console.table(make_table(f"{health.what} set {health.root}", ["class", "images"], rows, right=[1]))
        size = f"{health.usual_size[0]}x{health.usual_size[1]}" if health.usual_size else "-"
        mode = "colour" if health.colour * 2 > health.readable else "grayscale"
        console.line(f"  {health.images} images, imbalance {health.imbalance:.2f} (largest/smallest class), "
                     f"usually {size} {mode}, {health.unreadable} unreadable")
    result = {"data": str(args.data), **report.as_dict()}
    if report.ok:
        console.line("no problems found")
        return result
    console.line("")
    for finding in report.findings:
        console.line(finding.message)
    raise Ended(f"{len(report.findings)} problem(s) found", result, code=1)
