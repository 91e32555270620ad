"""What the CLI shows: Rich progress bars on stderr, result tables on stdout.

With ``--json`` nothing but the final JSON object goes to stdout; progress
still goes to stderr so a script can log it or throw it away.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cnn_tui.core.events import (
    ROW_FIELDS,
    BatchProgress,
    EpochEnd,
    Event,
    FoldEnd,
    LoadProgress,
    Notice,
    SearchPlanned,
    TaskFinished,
    TrainingStarted,
    TuningProgress,
)
from cnn_tui.core.fileio import excerpt, readable


class CliConsole:
    """Turns engine events into progress bars and lines; prints tables."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        # emoji=False: a name holding ":smile:" is shown as typed, not as an emoji
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=False, emoji=False)
        self.err = Console(file=sys.stderr, highlight=False, emoji=False)
        self.json_mode = json_mode
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._phase: str | None = None
        self._lock = threading.Lock()
        self.show_endings = False  # attach: a TaskFinished in the stream is a line (a resumed run has several)
        self.gone = False  # stderr went away (a closed terminal): stop writing to it, keep running

    # -- messages -------------------------------------------------------------

    def info(self, text: str) -> None:
        if not self.quiet:
            self._say(one_line(text))

    def warn(self, text: str) -> None:
        self._say(f"[yellow]warning:[/] {one_line(text)}")

    def error(self, text: str) -> None:
        self._say(f"[bold red]error:[/] {one_line(text)}")

    def _say(self, markup: str) -> None:
        if self.gone:
            return
        try:  # one message, one line: the terminal wraps it, a log keeps it greppable
            self.err.print(markup, soft_wrap=True)
        except OSError:  # the terminal closed under a run that goes on (nohup, SIGHUP ignored)
            self.gone = True

    # -- progress ---------------------------------------------------------------

    @contextmanager
    def progress(self, description: str) -> Iterator[None]:
        """One progress bar for a whole task: each phase (loading, training, predicting, a search)
        resets it when its first event arrives."""
        columns = (
            # descriptions hold folder names: plain text, so "[x]" is shown, never parsed as markup
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn(),
        )
        # not a terminal (a log file, a pipe): no bar; Rich would only leave a blank line where it was
        hidden = self.quiet or self.gone or not self.err.is_terminal
        self._progress = Progress(*columns, console=self.err, transient=True, disable=hidden)
        self._task = self._progress.add_task(description, total=None, rate="")
        self._phase = None
        with self._progress:
            try:
                yield
            finally:
                self._progress = None

    def emit(self, event: Event) -> None:
        """The ``emit`` callback given to the engine (called from its threads)."""
        with self._lock:
            try:
                self._handle(event)
            except OSError:  # stderr is gone: the run must not fail over its progress display
                self.gone = True
                if self._progress is not None:
                    self._progress.disable = True

    def _phase_begins(self, bar: Progress, phase: str, **reset: Any) -> None:
        if self._phase != phase:
            self._phase = phase
            bar.reset(self._task, rate="", **reset)

    def _print(self, bar: Progress | None, markup: str) -> None:
        if self.quiet or self.gone:
            return
        (bar.console if bar is not None else self.err).print(markup, soft_wrap=True)

    def _handle(self, event: Event) -> None:
        bar = self._progress
        if isinstance(event, Notice):
            (self.warn if event.level != "info" else self.info)(event.text)
        elif isinstance(event, TaskFinished):
            if self.show_endings:
                self._print(bar, format_ending(event))
        elif bar is None:
            return
        elif isinstance(event, LoadProgress):
            phase = f"loading {Path(event.folder).name}" if _is_folder(event.folder) else f"predicting ({event.folder})"
            self._phase_begins(bar, phase, description=readable(phase), total=event.total)
            rate = f"{event.images_per_second:,.0f} img/s" if event.images_per_second else ""
            bar.update(self._task, completed=event.done, total=event.total, rate=rate)
        elif isinstance(event, TrainingStarted):
            self._phase = "training"
            bar.reset(self._task, description="training", total=event.epochs * event.batches,
                      completed=event.initial_epoch * event.batches, rate="")
        elif isinstance(event, SearchPlanned):
            self._phase = "tuning"
            bar.reset(self._task, description=f"fits 0/{event.fits}", total=max(event.batches, 1), rate="")
        elif isinstance(event, BatchProgress):
            done = (event.epoch - 1) * event.batches + event.batch
            loss = f" loss {event.loss:.4f}" if event.loss is not None else ""
            bar.update(
                self._task, completed=done, total=event.epochs * event.batches,
                description=f"epoch {event.epoch}/{event.epochs}{loss}", rate=f"{event.images_per_second:,.0f} img/s",
            )
        elif isinstance(event, EpochEnd):
            self._print(bar, safe(format_epoch(event)))
        elif isinstance(event, TuningProgress):
            bar.update(
                self._task, completed=event.batches_done, total=event.batches_total,
                description=f"fits {event.fits_done}/{event.fits_total}", rate="",
            )
        elif isinstance(event, FoldEnd):
            self._print(bar, format_fold(event))

    # -- tables -------------------------------------------------------------------

    def table(self, table: Table) -> None:
        if self.json_mode:
            return
        if table.title:  # Rich wraps a title to the table's width; a narrow table would mangle it
            self.out.print(f"[bold]{one_line(str(table.title))}[/]", soft_wrap=True)
            table.title = None
        self.out.print(table)

    def line(self, text: str = "") -> None:
        """A line of plain text (not markup) on stdout; nothing under --json."""
        if not self.json_mode:
            self.out.print(safe(text), soft_wrap=True)


def format_epoch(event: EpochEnd) -> str:
    parts = [f"epoch {event.epoch:>3}/{event.epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in event.logs:
            parts.append(f"{key} {_fixed(event.logs[key])}")
    parts.append(f"{event.seconds:.1f}s")
    return "  ".join(parts)


def format_fold(event: FoldEnd) -> str:
    """A fold's line, as Rich markup (its values escaped)."""
    row = event.row
    params = safe(" ".join(f"{k}={v}" for k, v in row.items() if k not in FOLD_FIELDS))
    status = row.get("status")
    if status == "pruned":
        result = f"[yellow]{safe(str(row.get('reason') or 'pruned'))}[/]"
    elif status not in ("ok", "finished"):
        result = f"[red]failed[/]: {safe(str(row.get('reason') or ''))}"
    else:
        result = f"accuracy {_fixed(row.get('accuracy'))}  loss {_fixed(row.get('loss'))}"
    seconds = row.get("fit_seconds")
    took = f"  {seconds:.1f}s" if isinstance(seconds, (int, float)) else ""
    retried = f"  (retried {row['retries']}x)" if row.get("retries") else ""
    rung = f"  round {row['rung'] + 1}, {row.get('epochs_done')} epochs" if row.get("rung") else ""
    return (f"fit {event.fits_done}/{event.fits_total}  {params}  fold {row.get('fold', '?')}{rung}  "
            f"{result}{took}{retried}")


def _fixed(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"  # NaN comes back from events.jsonl as null


def format_ending(event: TaskFinished) -> str:
    """A task's end, as Rich markup: what a replayed stream shows where each process ended."""
    colour = {"finished": "green", "stopped": "yellow"}.get(event.status, "red")
    message = f": {safe(event.message)}" if event.message else ""
    return f"[{colour}]{event.task} {event.status}[/]{message}"


FOLD_FIELDS = ROW_FIELDS


def _is_folder(name: str) -> bool:
    """LoadProgress names a folder while decoding images, and "test set" while predicting."""
    return os.sep in name or Path(name).is_dir()


def number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def make_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        table.add_column(one_line(column), justify="right" if i in right else "left")
    for row in rows:  # cells are values (class and file names among them), not markup; one line each
        table.add_row(*(one_line(number(v) if not isinstance(v, str) else v) for v in row))
    return table


def safe(text: str) -> str:
    """User text for Rich: never markup; bytes of names that are not UTF-8 shown as \\xNN (the
    terminal's encoding could not print them) and control characters as their escapes (\\x1b: text
    from a file never drives the terminal)."""
    return escape(readable(str(text)))


def one_line(text: str) -> str:
    """``safe``, and newlines and tabs escaped too: a message, a title or a table cell stays one line
    whatever a file or folder name holds."""
    return escape(excerpt(str(text), limit=None))
