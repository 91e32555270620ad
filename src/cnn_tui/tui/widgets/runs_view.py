"""The Runs view: every run folder under the results folders in use, newest first, with its status,
task, data, the hyper params that differ from the defaults, its figures and how long it took.

Enter opens a run (the main screen attaches to a running one or loads a finished one), space marks
runs and c compares the marked ones side by side (the screen opens ``screens.runs_compare``), k asks to
stop a running run, r lists again. While a run is running the list refreshes itself every two seconds.

Listing is file I/O: it runs in a thread worker and the rows are applied on the UI thread. Every
text that comes from a file (ids, folder names, params, messages) is shown as plain ``Text``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from cnn_tui.core.params.fields import format_text
from cnn_tui.core.runs.index import RunSummary, list_runs
from cnn_tui.core.runs.results import load_history
from cnn_tui.tui.widgets.tables import STATUS_STYLES, display_path, format_duration

REFRESH_SECONDS = 2.0  # while a run is running
MARK = "●"
# (metric key, label), most telling first
METRIC_LABELS = (
    ("test_accuracy", "test"),
    ("val_accuracy", "val_acc"),
    ("best_cv_accuracy", "best cv"),
    ("accuracy", "acc"),
)
# Column sets from the richest down: the first whose columns fit the view's width is used (the
# params take what the others leave; the line under the table shows the highlighted run in full).
LAYOUTS = (  # (columns, figures in the result column, columns the params need at least)
    (("mark", "status", "run", "task", "data", "metrics", "started", "duration", "params"), 2, 20),
    (("mark", "status", "run", "task", "data", "metrics", "started", "duration", "params"), 1, 14),
    (("mark", "status", "run", "data", "metrics", "started", "duration", "params"), 1, 12),
    (("mark", "status", "run", "metrics", "duration", "params"), 1, 8),
    (("mark", "status", "run", "metrics", "duration"), 1, 0),
)
LABELS = {"mark": "", "status": "status", "run": "run id", "task": "task", "data": "data", "metrics": "result",
          "started": "started", "duration": "time", "params": "params"}
SCROLLBAR = 2


# ---------------------------------------------------------------- cell text (pure functions, tested alone)


def format_started(started: str, now: datetime | None = None) -> str:
    """``03-14 10:15`` this year, ``2024-03-14`` before; the text itself when it is no ISO time."""
    try:
        when = datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return started or "-"
    now = now or datetime.now()
    return when.strftime("%m-%d %H:%M") if when.year == now.year else when.strftime("%Y-%m-%d")


def format_metrics(metrics: dict[str, float], limit: int = 2) -> str:
    """The run's most telling figures: ``test 98.1% · val_acc 97.2%``; ``-`` when it has none."""
    parts = []
    for key, label in METRIC_LABELS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and value == value:  # not NaN
            parts.append(f"{label} {value * 100:.1f}%")
        if len(parts) >= limit:
            break
    return " · ".join(parts) or "-"


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_text(v)}" for k, v in params.items())


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, "dim"))


# ---------------------------------------------------------------- the widget


class RunsTable(DataTable):
    """The runs, one a row (keyed by the run folder); Enter opens the highlighted run."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]


class RunsView(Vertical):
    """Every run under the results folders (``set_folders``), newest first."""

    DEFAULT_CSS = """
    RunsView {
        height: 1fr;
    }
    RunsView #runs-header {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RunsView #runs-table {
        height: 1fr;
        min-height: 3;
    }
    RunsView #runs-detail {
        height: 2;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "refresh_runs", "Refresh"),
        Binding("k", "stop_run", "Stop run"),
    ]
    # A key's event bubbles up to the screen before any (non-priority) binding is looked up, and a
    # screen's on_key may stop it (the main screen does, for a key whose own action is disabled, such
    # as c = Snap): while the view has the focus, its keys are its own.
    KEYS = {b.key: b.action for b in BINDINGS}
    # Quit and Keys again, right after the view's own: the footer lists the focused widget's keys
    # first, and the screen's task keys after them would push these two off at 120 columns and less
    BINDINGS += [Binding("q", "screen.run('quit')", "Quit"),
                 Binding("question_mark", "screen.run('keys')", "Keys", key_display="?")]

    @dataclass
    class OpenRun(Message):
        """Open this run: attach to it when ``running``, else load what it wrote into the views."""

        run_dir: Path
        running: bool

    @dataclass
    class StopRun(Message):
        """The user asks to stop this running run (the screen confirms and stops it)."""

        run_dir: Path

    @dataclass
    class CompareRuns(Message):
        """Compare these runs side by side (the screen opens the compare screen)."""

        run_dirs: list[Path]

    def __init__(self, folders: Sequence[Path] = (), *, id: str | None = None,  # noqa: A002
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.folders: list[Path] = [Path(f) for f in folders]
        self.runs: list[RunSummary] = []
        self.marked: set[str] = set()  # run folders (as str), kept across refreshes
        self.loaded = False  # a listing has been applied at least once
        self.error: str | None = None
        self._columns: tuple[str, ...] = ()
        self._rows: dict[str, tuple[Any, ...]] = {}  # what each row shows, to update only what changed
        self._width = 0
        self._timer: Any = None
        self._listed_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(Text("Runs: listing…", style="dim"), id="runs-header")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-detail")

    def on_mount(self) -> None:
        self._timer = self.set_interval(REFRESH_SECONDS, self._tick, pause=True)
        self.refresh_runs()

    # ------------------------------------------------------------ what the main screen calls

    def set_folders(self, parents: Sequence[Path]) -> None:
        """The results folders to list (the data params' ``result_dir``, ``results/``...); lists them again
        when they changed."""
        parents = [Path(p) for p in parents]
        if parents == self.folders and self.loaded:
            return
        self.folders = parents
        if self.is_mounted:
            self.refresh_runs()

    def refresh_runs(self) -> None:
        """List the runs again (in a thread); the rows change when the listing is done."""
        self._list_runs(list(self.folders))

    @property
    def table(self) -> RunsTable:
        return self.query_one("#runs-table", RunsTable)

    @property
    def selected(self) -> RunSummary | None:
        """The run under the cursor."""
        table = self.table
        if not self.runs or table.row_count == 0:
            return None
        row = min(max(table.cursor_row, 0), len(self.runs) - 1)
        return self.runs[row]

    def marked_dirs(self) -> list[Path]:
        """The marked runs' folders, in the order of the list (newest first)."""
        return [Path(r.run_dir) for r in self.runs if r.run_dir in self.marked]

    @property
    def running(self) -> list[RunSummary]:
        return [r for r in self.runs if r.status == "running"]

    # ------------------------------------------------------------ listing

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def _list_runs(self, parents: list[Path]) -> None:
        error = None
        try:
            runs = list_runs(parents)
            for run in runs:
                if not run.metrics:  # running, or ended without its final figures: its last whole epoch
                    _add_progress(run)
        except Exception as exc:  # noqa: BLE001 - shown in the header, the view stays usable
            runs, error = [], f"cannot list the runs: {exc}"
        worker = get_current_worker()
        if worker.is_cancelled:
            return
        try:
            self.app.call_from_thread(self._apply, runs, error)
        except Exception:  # noqa: BLE001 - the view or the app went away meanwhile
            pass

    def _apply(self, runs: list[RunSummary], error: str | None = None) -> None:
        if not self.is_attached:
            return
        self.runs, self.error, self.loaded = runs, error, True
        self._listed_at = time.monotonic()
        present = {r.run_dir for r in runs}
        self.marked &= present
        self._fill()
        if self._timer is not None:
            if self.running:
                self._timer.resume()
            else:
                self._timer.pause()

    def _tick(self) -> None:
        """Every two seconds while a run is running: list again when the view is in sight."""
        if not self.running:
            self._timer.pause()
            return
        if self.is_on_screen and self.screen.is_active:
            self.refresh_runs()

    def on_show(self) -> None:
        # back in sight (its tab chosen again): runs may have started or ended while it was hidden
        if self.loaded and time.monotonic() - self._listed_at > REFRESH_SECONDS:
            self.refresh_runs()

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width and self.loaded:
            self._width = event.size.width
            # after the resize is laid out (filled from this handler, the table kept the labels' widths)
            self.call_after_refresh(self._fill, rebuild=True)

    # ------------------------------------------------------------ drawing

    def _fill(self, rebuild: bool = False) -> None:
        table = self.table
        self._width = self.size.width
        columns, rows = self._layout(self._width)
        keys = list(rows)
        if not rebuild and columns == self._columns and keys == list(self._rows):
            for key, cells in rows.items():  # same runs in the same order: change the cells that changed
                before = self._rows[key]
                for column, old, new in zip(columns, before, cells):
                    if old != new:
                        table.update_cell(key, column, new, update_width=True)
        else:
            current = self.selected.run_dir if self.selected and table.row_count else None
            table.clear(columns=True)
            for column in columns:
                justify = "right" if column == "duration" else "left"
                table.add_column(Text(LABELS[column], justify=justify), key=column)
            for key, cells in rows.items():
                table.add_row(*cells, key=key)
            if current in rows:
                table.move_cursor(row=keys.index(current), animate=False)
        self._columns, self._rows = columns, rows
        self._show_header()
        self._show_detail()

    def _layout(self, width: int) -> tuple[tuple[str, ...], dict[str, tuple[Text, ...]]]:
        """The richest column set that fits ``width``, and every run's cells in it."""
        cells: dict[str, dict[str, Text]] = {}
        for figures in {f for _, f, _ in LAYOUTS}:
            cells[f"metrics{figures}"] = {r.run_dir: Text(format_metrics(r.metrics, figures)) for r in self.runs}
        for column in LABELS:
            if column != "metrics":
                cells[column] = {r.run_dir: self._cell(r, column) for r in self.runs}

        def room(column: str, figures: int) -> int:  # the column's width: widest cell or label, padding
            found = cells[f"metrics{figures}" if column == "metrics" else column]
            return max([len(LABELS[column]), *(t.cell_len for t in found.values())]) + 2

        chosen = LAYOUTS[-1]
        params_room = 0
        for layout in LAYOUTS:
            columns, figures, least = layout
            used = sum(room(c, figures) for c in columns if c != "params") + SCROLLBAR
            params_room = width - used - 2
            if "params" not in columns or params_room >= least:
                chosen = layout
                break
        columns, figures, _ = chosen
        rows = {}
        for run in self.runs:
            row = []
            for column in columns:
                text = cells[f"metrics{figures}" if column == "metrics" else column][run.run_dir]
                if column == "params" and text.cell_len > params_room:
                    text = Text(clip(text.plain, params_room), style=text.style)
                row.append(text)
            rows[run.run_dir] = tuple(row)
        return columns, rows

    def _cell(self, run: RunSummary, column: str) -> Text:
        if column == "mark":
            return Text(MARK if run.run_dir in self.marked else " ", style="bold cyan")
        if column == "status":
            return status_text(run.status)
        if column == "run":
            return Text(run.run_id, style="bold" if run.status == "running" else "")
        if column == "task":
            return Text(run.task)
        if column == "data":
            return Text(clip(run.data, 16) or "-")
        if column == "started":
            return Text(format_started(run.started))
        if column == "duration":
            return Text(format_duration(run.seconds), justify="right")
        return Text(format_params(run.params))

    def _show_header(self) -> None:
        where = ", ".join(display_path(f) for f in self.folders) or "no results folder"
        if self.error:
            line = Text(self.error, style="red")
        elif not self.runs:
            line = Text.assemble(("No runs yet", "bold"), (f" in {where}: every task writes a run folder there.", "dim"))
        else:
            running = len(self.running)
            line = Text.assemble(("Runs ", "bold"), f"{len(self.runs)} in {where}")
            if running:
                line.append(f" · {running} running", style="bold green")
            if self.marked:
                line.append(f" · {len(self.marked)} marked", style="cyan")
            if len(self.marked) < 2:
                line.append(" · space marks, c compares", style="dim")
        self.query_one("#runs-header", Static).update(line)

    def _show_detail(self) -> None:
        run = self.selected
        detail = self.query_one("#runs-detail", Static)
        if run is None:
            detail.update("")
            return
        first = Text.assemble((run.run_dir, ""), ("  started ", "dim"), run.started.replace("T", " ") or "-")
        if run.pid and run.status == "running":
            first.append(f"  pid {run.pid}", style="dim")
        if run.exit_code not in (None, 0):
            first.append(f"  exit code {run.exit_code}", style="red")
        second = Text()
        if run.message:
            second.append(run.message, style=STATUS_STYLES.get(run.status, ""))
        if run.data:
            second.append(("  " if second else "") + "data ", style="dim")
            second.append(run.data)
        if run.params:
            second.append(("  " if second else "") + "params ", style="dim")
            second.append(format_params(run.params))
        detail.update(Text("\n").join([first, second]))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        run = self._run(event.row_key.value)
        if run is not None:
            self.post_message(self.OpenRun(Path(run.run_dir), run.status == "running"))

    def _run(self, run_dir: str | None) -> RunSummary | None:
        return next((r for r in self.runs if r.run_dir == run_dir), None)

    # ------------------------------------------------------------ keys

    async def on_key(self, event: events.Key) -> None:
        action = self.KEYS.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            await self.run_action(action)

    def action_toggle_mark(self) -> None:
        run = self.selected
        if run is None:
            return
        self.marked.symmetric_difference_update({run.run_dir})
        cells = self._rows.get(run.run_dir)
        if cells is not None and "mark" in self._columns:
            mark = Text(MARK if run.run_dir in self.marked else " ", style="bold cyan")
            self.table.update_cell(run.run_dir, "mark", mark)
            self._rows[run.run_dir] = (mark, *cells[1:])
        self._show_header()

    def action_compare(self) -> None:
        dirs = self.marked_dirs()
        if len(dirs) < 2:
            self.notify("Mark at least two runs with space to compare them.", title="Compare runs")
            return
        self.post_message(self.CompareRuns(dirs))

    def action_refresh_runs(self) -> None:
        self.refresh_runs()

    def action_stop_run(self) -> None:
        run = self.selected
        if run is None:
            return
        if run.status != "running":
            self.notify(f"{run.run_id} is not running ({run.status}).", title="Stop run", markup=False)
            return
        self.post_message(self.StopRun(Path(run.run_dir)))


def _add_progress(run: RunSummary) -> None:
    """A run's figures from its last whole epoch (history.csv), for a run.json without them."""
    history = load_history(Path(run.run_dir))
    for key in ("accuracy", "val_accuracy", "loss", "val_loss"):
        if history.get(key):
            run.metrics[key] = history[key][-1]
