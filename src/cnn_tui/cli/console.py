"""What the CLI shows: Rich progress bars on stderr, result tables on stdout.

With ``--json`` nothing but the final JSON object goes to stdout; progress
still goes to stderr so a script can log it or throw it away.
"""

from __future__ import annotations

import math
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cnn_tui.core.events import BatchProgress, EpochEnd, Event, FoldEnd, LoadProgress, Notice, TuningProgress


class CliConsole:
    """Turns engine events into progress bars and lines; prints tables."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        self.err = Console(file=sys.stderr, highlight=False)
        self.json_mode = json_mode
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._kind: str | None = None
        self._lock = threading.Lock()

    # -- messages -------------------------------------------------------------

    def info(self, text: str) -> None:
        if not self.quiet:
            self.err.print(text)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {text}")

    def error(self, text: str) -> None:
        self.err.print(f"[bold red]error:[/] {text}", soft_wrap=True)

    # -- progress ---------------------------------------------------------------

    @contextmanager
    def progress(self, description: str) -> Iterator[None]:
        columns = (
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        )
        self._progress = Progress(*columns, console=self.err, transient=True, disable=self.quiet)
        self._task = self._progress.add_task(description, total=None, rate="")
        with self._progress:
            try:
                yield
            finally:
                self._progress = None

    def emit(self, event: Event) -> None:
        """The ``emit`` callback given to the engine (called from its threads)."""
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        bar = self._progress
        if isinstance(event, Notice):
            (self.warn if event.level != "info" else self.info)(event.text)
        elif bar is None:
            return
        elif isinstance(event, LoadProgress):
            rate = f"{event.images_per_second:,.0f} img/s" if event.images_per_second else ""
            bar.update(self._task, completed=event.done, total=event.total, rate=rate)
        elif isinstance(event, BatchProgress):
            done = (event.epoch - 1) * event.batches + event.batch
            loss = f" loss {event.loss:.4f}" if event.loss is not None else ""
            bar.update(
                self._task, completed=done, total=event.epochs * event.batches,
                description=f"epoch {event.epoch}/{event.epochs}{loss}", rate=f"{event.images_per_second:,.0f} img/s",
            )
        elif isinstance(event, EpochEnd):
            if not self.quiet:
                bar.console.print(format_epoch(event), soft_wrap=True)
        elif isinstance(event, TuningProgress):
            bar.update(
                self._task, completed=event.batches_done, total=event.batches_total,
                description=f"fits {event.fits_done}/{event.fits_total}", rate="",
            )
        elif isinstance(event, FoldEnd):
            if not self.quiet:
                bar.console.print(format_fold(event), soft_wrap=True)

    # -- tables -------------------------------------------------------------------

    def table(self, table: Table) -> None:
        if self.json_mode:
            return
        if table.title:  # Rich wraps a title to the table's width; a narrow table would mangle it
            self.out.print(f"[bold]{table.title}[/]", soft_wrap=True)
            table.title = None
        self.out.print(table)

    def line(self, text: str = "") -> None:
        if not self.json_mode:
            self.out.print(text, soft_wrap=True)


def format_epoch(event: EpochEnd) -> str:
    parts = [f"epoch {event.epoch:>3}/{event.epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in event.logs:
            parts.append(f"{key} {event.logs[key]:.4f}")
    parts.append(f"{event.seconds:.1f}s")
    return "  ".join(parts)


def format_fold(event: FoldEnd) -> str:
    row = event.row
    params = " ".join(f"{k}={v}" for k, v in row.items() if k not in FOLD_FIELDS)
    if row["status"] != "ok":
        result = f"[red]failed[/]: {row['reason']}"
    else:
        result = f"accuracy {row['accuracy']:.4f}  loss {row['loss']:.4f}"
    return f"fit {event.fits_done}/{event.fits_total}  {params}  fold {row['fold']}  {result}  {row['fit_seconds']:.1f}s"


FOLD_FIELDS = {"fold", "samples", "accuracy", "loss", "fit_seconds", "status", "reason"}


def number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def make_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*(number(v) if not isinstance(v, str) else v for v in row))
    return table
