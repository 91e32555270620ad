"""Runs side by side: training curves overlaid (one colour a run), the params of each run with the
rows that differ first and flagged, and their figures (final accuracy and loss, test accuracy, best
CV accuracy, epochs, duration). A run that lacks a file shows ``-`` where that file would speak.

The run folders are read in a thread worker; nothing here imports numpy at module import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from cnn_tui.core.fileio import read_json_object
from cnn_tui.core.params.fields import DATA_FIELDS, HYPER_FIELDS, HYPER_NAMES, format_text
from cnn_tui.core.runs.comparison import NoiseVerdict, compare_test_accuracy
from cnn_tui.core.runs.folder import read_run
from cnn_tui.core.runs.index import linked_test_accuracy
from cnn_tui.core.runs.results import load_history, read_ending
from cnn_tui.tui.widgets.tables import STATUS_STYLES, format_duration

MISSING = "-"
# one colour a run, the same in the curves (plotext takes RGB) and in the legend and headers (Rich)
PALETTE = (
    (0, 200, 255), (255, 140, 0), (200, 90, 255), (90, 220, 90),
    (255, 85, 85), (240, 220, 40), (90, 140, 255), (255, 110, 180),
)
CURVES = ("accuracy", "val_accuracy", "loss", "val_loss")
DATA_COMPARED = ("image_size", "color_mode", "validation_split", "seed")
DIFFERS = "≠"
DIFF_STYLE = "bold yellow"


def header(run_id: str) -> str:
    """A run id on two lines, when it is ``<date>-<time>-<task>``: the columns stay narrow."""
    parts = run_id.split("-", 2)
    if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
        return f"{parts[0]}-{parts[1]}\n{parts[2]}"
    return run_id


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def rich_colour(index: int) -> str:
    r, g, b = colour(index)
    return f"rgb({r},{g},{b})"


@dataclass
class RunFiles:
    """What one run folder holds, as far as the comparison needs it (None: the file is missing)."""

    run_dir: Path
    run_id: str
    status: str = "?"
    task: str = ""
    seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    hyper: dict[str, Any] | None = None
    data: dict[str, Any] | None = None


def read_run_files(folder: Path) -> RunFiles:
    folder = Path(folder)
    record = read_run(folder)
    ending = read_ending(folder, record=record or {})
    run = RunFiles(folder, ending.run_id)
    if record is not None:  # without a readable run.json, how it went is "?"
        run.status, run.task, run.seconds, run.metrics = ending.status, ending.task, ending.seconds, ending.metrics
        if "test_accuracy" not in run.metrics and (linked := linked_test_accuracy(folder)) is not None:
            run.metrics = {**run.metrics, "test_accuracy": linked}  # measured by an evaluation run of its model
    try:
        run.history = load_history(folder)
    except (OSError, ValueError):
        run.history = {}
    run.hyper = read_json_object(folder / "hyper_params.json")
    run.data = read_json_object(folder / "data_params.json")
    return run


# ---------------------------------------------------------------- tables as plain data (tested alone)


@dataclass
class ParamRow:
    name: str
    values: list[str]  # one a run, MISSING where the run has no such file
    differs: bool


def param_rows(runs: Sequence[RunFiles]) -> list[ParamRow]:
    """One row per hyper field any run has, then the data params that shape the input; the rows whose
    values differ first (runs without the file do not count), each group in the fields' order."""
    hyper_defaults = {f.name: f.default for f in HYPER_FIELDS}
    data_defaults = {f.name: f.default for f in DATA_FIELDS}
    present = [k for run in runs if run.hyper for k in run.hyper]
    names = [n for n in HYPER_NAMES if n in present]
    names += list(dict.fromkeys(k for k in present if k not in HYPER_NAMES))

    def value(source: dict[str, Any] | None, name: str, defaults: dict[str, Any]) -> str:
        if source is None:
            return MISSING
        if name in source:
            return format_text(source[name]) if source[name] is not None else MISSING
        return format_text(defaults[name]) if defaults.get(name) is not None else MISSING  # what loading fills in

    rows = [ParamRow(n, [value(r.hyper, n, hyper_defaults) for r in runs], False) for n in names]
    if any(r.data is not None for r in runs):
        rows += [ParamRow(n, [value(r.data, n, data_defaults) for r in runs], False) for n in DATA_COMPARED]
    for row in rows:
        known = {v for v, run in zip(row.values, runs) if v != MISSING or (run.hyper if row.name in names else run.data)}
        row.differs = len(known) > 1
    return [r for r in rows if r.differs] + [r for r in rows if not r.differs]


METRIC_ROWS = (
    # (label, key, kind): kind says how to show it and which end is best
    ("final accuracy", "accuracy", "percent"),
    ("final val_accuracy", "val_accuracy", "percent"),
    ("final loss", "loss", "loss"),
    ("final val_loss", "val_loss", "loss"),
    ("test accuracy", "test_accuracy", "percent"),
    ("best CV accuracy", "best_cv_accuracy", "percent"),
    ("epochs done", "epochs", "count"),
    ("duration", "seconds", "duration"),
)


def metric_value(run: RunFiles, key: str) -> float | None:
    if key == "epochs":
        done = max((len(v) for v in run.history.values()), default=0)
        return float(done) if done else None
    if key == "seconds":
        return run.seconds
    value = run.metrics.get(key)
    if value is None and key in CURVES and run.history.get(key):
        value = run.history[key][-1]  # a stopped or running run: its last whole epoch
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def show_metric(value: float | None, kind: str) -> str:
    if value is None:
        return MISSING
    if kind == "percent":
        return f"{value * 100:.2f}%"
    if kind == "loss":
        return f"{value:.4f}"
    if kind == "count":
        return f"{int(value)}"
    return format_duration(value)


def key_of(label: str) -> str:
    return next((key for text, key, _ in METRIC_ROWS if text == label), "")


def metric_rows(runs: Sequence[RunFiles]) -> list[tuple[str, list[str], int | None]]:
    """(label, one text a run, index of the best run or None) for each figure."""
    rows = []
    for label, key, kind in METRIC_ROWS:
        values = [metric_value(r, key) for r in runs]
        known = [(v, i) for i, v in enumerate(values) if v is not None]
        best = None
        if kind in ("percent", "loss") and len(known) > 1 and len({v for v, _ in known}) > 1:
            best = (max(known) if kind == "percent" else min(known))[1]
        rows.append((label, [show_metric(v, kind) for v in values], best))
    return rows


NOISE_LABEL = "test accuracy vs ★"


def noise_row(runs: Sequence[RunFiles]) -> list[str] | None:
    """Each run's test accuracy against the best one's, paired on the same test images: within noise
    or beyond it, or why it cannot tell; None when fewer than two runs have a test accuracy."""
    values = [metric_value(r, "test_accuracy") for r in runs]
    known = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return None
    best = max(known)[1]
    cache: dict[Path, Any] = {}
    cells = []
    for i, run in enumerate(runs):
        if i == best:
            cells.append("★ (the best)")
        elif values[i] is None:
            cells.append(MISSING)
        else:
            verdict: NoiseVerdict = compare_test_accuracy(run.run_dir, runs[best].run_dir, evaluations=cache)
            cells.append(verdict.text())
    return cells


# ---------------------------------------------------------------- the screen


class RunsCompareScreen(ModalScreen[None]):
    """Two or more runs side by side; Escape or q closes."""

    DEFAULT_CSS = """
    RunsCompareScreen {
        align: center middle;
        background: $background 60%;
    }
    RunsCompareScreen #compare-dialog {
        width: 100%;
        height: 100%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    RunsCompareScreen #compare-title {
        width: 1fr;
        text-style: bold;
        color: $accent;
    }
    RunsCompareScreen #compare-legend {
        height: auto;
        max-height: 3;
    }
    RunsCompareScreen TabbedContent {
        height: 1fr;
    }
    RunsCompareScreen TabbedContent > ContentSwitcher {
        height: 1fr;
    }
    RunsCompareScreen TabPane {
        height: 1fr;
        padding: 0;
    }
    RunsCompareScreen .compare-charts {
        height: 1fr;
    }
    RunsCompareScreen .compare-chart {
        width: 1fr;
        height: 1fr;
    }
    RunsCompareScreen DataTable {
        height: 1fr;
    }
    RunsCompareScreen #compare-params-note {
        height: 1;
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("1", "tab('compare-curves')", "Curves"),
        Binding("2", "tab('compare-params')", "Params"),
        Binding("3", "tab('compare-results')", "Results"),
    ]

    def __init__(self, run_dirs: Sequence[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.runs: list[RunFiles] = []
        self.params: list[ParamRow] = []
        self.noise: list[str] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-dialog"):
            yield Label(f"Compare {len(self.run_dirs)} runs · 1 curves · 2 params · 3 results · esc closes",
                        id="compare-title")
            yield Static(Text("reading the runs…", style="dim"), id="compare-legend")
            with TabbedContent(id="compare-tabs", initial="compare-curves"):
                with TabPane("1 Curves", id="compare-curves"):
                    with Horizontal(classes="compare-charts", id="compare-accuracy-row"):
                        yield PlotextPlot(id="chart-accuracy", classes="compare-chart")
                        yield PlotextPlot(id="chart-val_accuracy", classes="compare-chart")
                    with Horizontal(classes="compare-charts", id="compare-loss-row"):
                        yield PlotextPlot(id="chart-loss", classes="compare-chart")
                        yield PlotextPlot(id="chart-val_loss", classes="compare-chart")
                with TabPane("2 Params", id="compare-params"):
                    yield Static("", id="compare-params-note")
                    yield DataTable(id="compare-params-table", cursor_type="row", zebra_stripes=True,
                                    header_height=2)
                with TabPane("3 Results", id="compare-results"):
                    yield DataTable(id="compare-metrics-table", cursor_type="row", zebra_stripes=True,
                                    header_height=2)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="runs-compare", exit_on_error=False)
    def load(self) -> None:
        try:
            runs = [read_run_files(d) for d in self.run_dirs]
            self.noise = noise_row(runs)  # here, in the thread: it loads the runs' predictions
            show, args = self.show_runs, (runs,)
        except Exception as exc:  # noqa: BLE001 - said on the screen, which stays closable
            show, args = self.show_error, (f"cannot read the runs: {exc}",)
        try:
            self.app.call_from_thread(show, *args)
        except Exception:  # noqa: BLE001 - closed meanwhile
            pass

    def show_runs(self, runs: list[RunFiles]) -> None:
        if not self.is_attached:
            return
        self.runs = runs
        legend = Text()
        for i, run in enumerate(runs):
            if i:
                legend.append("   ")
            legend.append("━━ ", style=rich_colour(i))
            legend.append(run.run_id)
            legend.append(f" {run.status}", style=STATUS_STYLES.get(run.status) or "dim")
        self.query_one("#compare-legend", Static).update(legend)
        self.fill_params()
        self.fill_metrics()
        self.draw_curves()

    def show_error(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#compare-legend", Static).update(Text(text, style="red"))

    def _headers(self, table: DataTable, first: str) -> None:
        table.clear(columns=True)
        table.add_column(Text(""), key="flag")
        table.add_column(Text(first), key="name")
        for i, run in enumerate(self.runs):
            table.add_column(Text(header(run.run_id), style=f"bold {rich_colour(i)}"), key=f"run{i}")

    def fill_params(self) -> None:
        table = self.query_one("#compare-params-table", DataTable)
        self._headers(table, "param")
        self.params = param_rows(self.runs)
        for row in self.params:
            style = DIFF_STYLE if row.differs else ""
            table.add_row(Text(DIFFERS if row.differs else "", style=DIFF_STYLE), Text(row.name, style=style),
                          *(Text(v, style=style if v != MISSING else "dim") for v in row.values), key=row.name)
        differing = sum(r.differs for r in self.params)
        note = (f"{differing} of {len(self.params)} params differ ({DIFFERS}, listed first)" if differing
                else "the runs share every param" if self.params else "no run has a hyper_params.json")
        self.query_one("#compare-params-note", Static).update(Text(note))

    def fill_metrics(self) -> None:
        table = self.query_one("#compare-metrics-table", DataTable)
        self._headers(table, "figure")
        table.add_row(Text(""), Text("status"),
                      *(Text(r.status, style=STATUS_STYLES.get(r.status) or "dim") for r in self.runs), key="status")
        table.add_row(Text(""), Text("task"), *(Text(r.task or MISSING) for r in self.runs), key="task")
        for label, values, best in metric_rows(self.runs):
            cells = [Text(v, justify="right", style="bold green" if i == best else ("dim" if v == MISSING else ""))
                     for i, v in enumerate(values)]
            table.add_row(Text("★" if best is not None else "", style="bold green"), Text(label), *cells, key=label)
            if key_of(label) == "test_accuracy" and self.noise:
                table.add_row(Text(""), Text(NOISE_LABEL), *(
                    Text(v, style="yellow" if v.startswith("within") else ("dim" if not v.startswith("beyond") else ""))
                    for v in self.noise), key=NOISE_LABEL)

    def draw_curves(self) -> None:
        has_val = any(r.history.get(k) for r in self.runs for k in ("val_accuracy", "val_loss"))
        for name in ("chart-val_accuracy", "chart-val_loss"):
            self.query_one(f"#{name}").display = has_val
        for key in CURVES:
            chart = self.query_one(f"#chart-{key}", PlotextPlot)
            plt = chart.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(key)
            plt.xlabel("epoch")
            epochs = 0
            for i, run in enumerate(self.runs):
                values = run.history.get(key) or []
                if values:
                    epochs = max(epochs, len(values))
                    plt.plot(list(range(1, len(values) + 1)), values, color=colour(i), marker="braille")
            if epochs:
                step = max(1, epochs // 8)
                ticks = list(range(1, epochs + 1, step))
                plt.xticks(ticks, [str(t) for t in ticks])
            else:
                plt.title(f"{key}: no run has it")
                plt.xticks([1], ["1"])
            chart.refresh()

    def action_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane
        table = {"compare-params": "#compare-params-table", "compare-results": "#compare-metrics-table"}.get(pane)
        if table:
            self.query_one(table, DataTable).focus()

    def action_close(self) -> None:
        self.dismiss(None)
