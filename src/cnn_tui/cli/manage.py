"""The commands that look after runs rather than run them: ``runs``, ``compare``, ``attach`` and ``stop``.

A run is named by its id, a unique prefix of one, or its folder, and looked for
under ./results and every ``--results`` folder (``core.runs.index``).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from rich import box
from rich.measure import Measurement
from rich.table import Table

from cnn_tui.cli.commands import Args, Ended, results_folders
from cnn_tui.cli.console import CliConsole, make_table, safe
from cnn_tui.core.events import SystemSample, TaskFinished
from cnn_tui.core.fileio import read_json_object
from cnn_tui.core.runs import control
from cnn_tui.core.runs.comparison import compare_test_accuracy
from cnn_tui.core.runs.index import RunSummary, find_run, list_runs
from cnn_tui.core.runs.lifecycle import EXIT_OK
from cnn_tui.core.runs.results import read_ending
from cnn_tui.core.runs.system_monitor import describe

STATUS_COLOURS = {"running": "cyan", "finished": "green", "stopped": "yellow", "failed": "red", "interrupted": "magenta"}


# ---------------------------------------------------------------- runs


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def started_text(iso: str) -> str:
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso or "-"
    return when.strftime("%H:%M:%S" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


METRIC_LABELS = (("accuracy", "acc"), ("val_accuracy", "val"), ("test_accuracy", "test"), ("best_cv_accuracy", "cv"))


def metrics_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{label} {metrics[key]:.1%}" for key, label in METRIC_LABELS if key in metrics) or "-"


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "-"


COLUMNS = ("id", "status", "task", "data", "params", "metrics", "started", "duration")


def _cells(s: RunSummary) -> dict[str, str]:
    return {"id": s.run_id, "status": s.status, "task": s.task, "data": s.data or "-", "params": params_text(s.params),
            "metrics": metrics_text(s.metrics), "started": started_text(s.started), "duration": duration(s.seconds)}


def _status_markup(status: str, width: int = 0) -> str:
    return f"[{STATUS_COLOURS.get(status, 'white')}]{safe(status)}[/]" + " " * max(0, width - len(status))


PARAMS_WIDTH = 40  # the least a params column needs to be worth a column


def runs_table(summaries: list[RunSummary], *, without: str = "") -> Table:
    """One row a run: for a terminal wide enough (the params wrap inside their column)."""
    columns = [c for c in COLUMNS if c != without]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column == "duration" else "left", no_wrap=column != "params")
    for s in summaries:
        cells = _cells(s)
        table.add_row(*(_status_markup(cells[c]) if c == "status" else safe(cells[c]) for c in columns))
    return table


def runs_lines(summaries: list[RunSummary]) -> list[str]:
    """Two lines a run (its params below it): for a narrow terminal (80x24)."""
    first = [c for c in COLUMNS if c != "params"]
    rows = [_cells(s) for s in summaries]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in first}

    def line(cells: dict[str, str], header: bool = False) -> str:
        parts = []
        for c in first:
            text = cells[c]
            if c == "status" and not header:
                parts.append(_status_markup(text, widths[c]))
            else:
                padded = text.rjust(widths[c]) if c == "duration" else text.ljust(widths[c])
                parts.append(f"[bold]{safe(padded)}[/]" if header else safe(padded))
        return "  ".join(parts).rstrip()

    out = [line({c: c for c in first}, header=True)]
    for cells in rows:
        out.append(line(cells))
        if cells["params"] != "-":
            out.append(f"[dim]  {safe(cells['params'])}[/]")
    return out


def system_lines(summaries: list[RunSummary], width: int) -> list[str]:
    """A running run's machine as its last sample saw it: one line a run, under the list."""
    lines = []
    for s in summaries:
        if s.system is not None:
            label = f"{s.run_id}: "
            lines.append(f"[dim]{safe(label)}{safe(describe(SystemSample(**s.system), width=width - len(label)))}[/]")
    return lines


def print_runs(console: CliConsole, summaries: list[RunSummary]) -> None:
    if console.json_mode:
        return
    out = console.out
    others = runs_table(summaries, without="params")
    natural = Measurement.get(out, out.options.update_width(10_000), others).maximum
    if natural + PARAMS_WIDTH <= out.width:  # room for the params column, wrapped if it must
        console.table(runs_table(summaries))
    else:
        for text in runs_lines(summaries):
            out.print(text, soft_wrap=True)
    for text in system_lines(summaries, out.width):
        out.print(text, soft_wrap=True)


def cmd_runs(args: Args, console: CliConsole, stop: threading.Event) -> list[dict[str, Any]]:
    """Every run under the results folders, newest first. With --json: a JSON list, one object per run."""
    folders = results_folders(args)
    summaries = list_runs(folders)
    if not summaries:
        console.info(f"no runs in {', '.join(str(f) for f in folders)}")
    else:
        print_runs(console, summaries)
    return [s.as_dict() for s in summaries]


# ---------------------------------------------------------------- compare


def cmd_compare(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """The runs' test accuracies with their 95 % intervals, and whether each is within noise of the
    best one (a paired bootstrap on the test images both scored)."""
    folders = [find_run(name, results_folders(args)) for name in args.runs]
    endings = [read_ending(folder) for folder in folders]
    accuracies = [e.metrics.get("test_accuracy") for e in endings]
    known = [(a, i) for i, a in enumerate(accuracies) if a is not None]
    if not known:
        raise Ended("none of these runs has a test accuracy (evaluate, predict or pipeline runs have one)",
                    {"runs": [f.name for f in folders]}, 2)
    best = max(known)[1]
    cache: dict[Any, Any] = {}
    rows, out = [], []
    for i, (folder, accuracy) in enumerate(zip(folders, accuracies)):
        interval = ((read_json_object(folder / "evaluation.json") or {}).get("intervals") or {}).get("accuracy")
        shown = "-" if accuracy is None else f"{accuracy * 100:.2f} %"
        if accuracy is not None and isinstance(interval, dict):
            shown += f" ({interval['low'] * 100:.1f}–{interval['high'] * 100:.1f})"
        verdict = None if i == best or accuracy is None else compare_test_accuracy(folder, folders[best],
                                                                                   evaluations=cache)
        rows.append((folder.name, endings[i].task, shown,
                     "★ the best" if i == best else ("-" if verdict is None else verdict.text())))
        out.append({"run_id": folder.name, "run_dir": str(folder), "test_accuracy": accuracy,
                    "accuracy_interval": interval, "best": i == best,
                    "versus_best": verdict.as_dict() if verdict else None})
    console.table(make_table("Test accuracy (95 % interval) and the best against the rest",
                             ["run", "task", "test accuracy", "against ★ (paired bootstrap)"], rows, right=[2]))
    return {"runs": out, "best": folders[best].name}


# ---------------------------------------------------------------- attach


def cmd_attach(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """Replay the run's events, then follow it to its end; Ctrl-C (``stop``) leaves it running."""
    folder = find_run(args.run, results_folders(args))
    run_id = folder.name
    now = read_ending(folder)
    console.info(f"run {run_id} ({now.task}, {now.status})"
                 + ("; Ctrl-C detaches, the run goes on" if now.status == "running" else ""))
    console.show_endings = True
    ending = None  # a process's end is shown when more follows it (a resumed run); the last one, below
    with console.progress("replaying"):
        for event in control.follow(folder, stop=stop):
            if ending is not None:
                console.emit(ending)
                ending = None
            if isinstance(event, TaskFinished):
                ending = event
            else:
                console.emit(event)
    result = {"run_id": run_id, "run_dir": str(folder)}
    if stop.is_set() and control.is_running(folder):
        console.info(f"detached; the run goes on: cnn-tui attach {run_id}")
        return {**result, "status": "running", "detached": True}
    ending = read_ending(folder)
    result.update(status=ending.status, message=ending.message, run_exit_code=ending.exit_code)
    line = f"run {run_id} {ending.status}" + (f": {ending.message}" if ending.message else "")
    if ending.exit_code != EXIT_OK:
        raise Ended(line, result, ending.exit_code)
    console.info(line)
    return result


# ---------------------------------------------------------------- stop


def cmd_stop(args: Args, console: CliConsole, stop: threading.Event) -> dict[str, Any]:
    """Ask a running run to stop and (unless --no-wait) wait until it has saved and ended."""
    folder = find_run(args.run, results_folders(args))
    run_id = folder.name
    record = control.stop(folder, wait=False)
    result = {"run_id": run_id, "run_dir": str(folder), "pid": record.get("pid")}
    if args.no_wait:
        console.info(f"asked run {run_id} to stop (pid {record.get('pid')}); it saves what it has and ends")
        return {**result, "status": "stopping"}
    console.info(f"asked run {run_id} to stop (pid {record.get('pid')}); waiting while it saves what it has")
    while control.is_running(folder):
        if stop.wait(0.1):
            console.info(f"no longer waiting; run {run_id} is stopping (cnn-tui runs shows when it has)")
            return {**result, "status": "stopping"}
    ending = read_ending(folder)
    console.line(f"run {run_id} {ending.status}" + (f": {ending.message}" if ending.message else ""))
    return {**result, "status": ending.status, "message": ending.message, "run_exit_code": ending.exit_code}
