"""The Training view: epoch and run progress, live accuracy and loss curves, the epoch table."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Static

from cnn_tui.core.events import BatchProgress, EpochEnd, SystemSample
from cnn_tui.core.runs.system_monitor import describe
from cnn_tui.tui.widgets.charts import HistoryChart, legend
from cnn_tui.tui.widgets.progress import ProgressRow, format_eta
from cnn_tui.tui.widgets.tables import add_epoch, display_path, reset_epochs

CHART_INTERVAL = 1.0  # seconds between redraws of the curves (a redraw costs the UI tens of ms)
STARTING = "starting…"  # the run row's detail until its first batch


class TrainingView(Vertical):
    chart_timer = None
    charts_drawn = 0.0
    kept: int | None = None  # the epoch early stopping kept, once the run has ended
    validation = True

    def compose(self) -> ComposeResult:
        yield Static(Text("Not trained yet: t trains on all images, v holds out a validation share.", style="dim"),
                     id="training-title")
        yield ProgressRow("Epoch", id="epoch-progress")
        yield ProgressRow("Run", id="run-progress")
        yield Static("", id="training-system")
        with Horizontal(id="training-body"):
            with Vertical(id="charts-box"):
                yield Static(legend(), id="chart-legend")
                with Horizontal(id="charts"):
                    yield HistoryChart("accuracy", id="accuracy-chart")
                    yield HistoryChart("loss", id="loss-chart")
            yield DataTable(id="epoch-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="training-files")

    def on_mount(self) -> None:
        try:
            reset_epochs(self.query_one("#epoch-table", DataTable))
        except NoMatches:  # quit while the views were mounting: its children are already gone
            return

    def start(self, title: str, epochs: int, batches: int, *, validation: bool = True) -> None:
        self.history: dict[str, list[float]] = {}
        self.kept, self.validation = None, validation
        self.query_one("#chart-legend", Static).update(legend(validation))
        self.epochs, self.batches = epochs, batches
        self.query_one("#training-title", Static).update(Text(title, style="bold"))
        self.query_one("#epoch-progress", ProgressRow).set(0, batches, f"epoch 1 of {epochs}")
        self.query_one("#run-progress", ProgressRow).set(0, epochs * batches, STARTING)
        reset_epochs(self.query_one("#epoch-table", DataTable))
        self.draw_charts()
        self.query_one("#training-files", Static).update("")
        self.query_one("#training-system", Static).display = False  # until this run's first sample

    def show_batch(self, event: BatchProgress) -> None:
        self.query_one("#epoch-progress", ProgressRow).set(
            event.batch, event.batches,
            f"epoch {event.epoch} of {event.epochs} · batch {event.batch} of {event.batches}",
        )
        done = (event.epoch - 1) * event.batches + event.batch
        figures = [format_eta(event.eta_seconds), f"{event.images_per_second:,.0f} img/s"]  # ETA first: it matters most
        if event.loss is not None:
            figures.append(f"loss {event.loss:.4f}")
        if event.accuracy is not None:
            figures.append(f"acc {event.accuracy:.3f}")
        self.query_one("#run-progress", ProgressRow).set(done, event.epochs * event.batches, " · ".join(figures))

    def show_system(self, event: SystemSample) -> None:
        """The machine's latest sample (GPUs, CPU, memory) on one line under the progress."""
        system = self.query_one("#training-system", Static)
        system.update(describe(event, width=max(self.size.width - 2, 20)))
        system.display = True

    def show_epoch(self, event: EpochEnd) -> None:
        for key, value in event.logs.items():
            self.history.setdefault(key, []).append(value)
        # short epochs: the curves follow at most once a second, the table row by row
        wait = self.charts_drawn + CHART_INTERVAL - time.monotonic()
        if wait <= 0:
            self.draw_charts()
        elif self.chart_timer is None:
            self.chart_timer = self.set_timer(wait, self.draw_charts)
        add_epoch(self.query_one("#epoch-table", DataTable), event.epoch, event.logs, event.seconds)
        self.query_one("#epoch-progress", ProgressRow).set(
            self.batches, self.batches, f"epoch {event.epoch} of {event.epochs} done")

    def draw_charts(self) -> None:
        if self.chart_timer is not None:
            self.chart_timer.stop()
            self.chart_timer = None
        self.charts_drawn = time.monotonic()
        for chart in self.query(HistoryChart):
            chart.show(self.history, self.kept)

    def finish(self, message: str, files: dict, ok: bool, kept_epoch: int | None = None, *,
               status: str = "") -> None:
        """``kept_epoch``: early stopping restored that epoch's weights (the model saved is that epoch's);
        ``status``: how the run ended (finished, stopped, failed…), shown on the run row of a run opened after it ended."""
        self.kept = kept_epoch
        self.query_one("#training-system", Static).display = False  # the run is over: no machine to watch
        self.query_one("#chart-legend", Static).update(legend(self.validation, kept_epoch))
        self.draw_charts()
        self.query_one("#epoch-table", DataTable).scroll_end(animate=False)
        title = self.query_one("#training-title", Static)
        title.update(Text(message, style="bold green" if ok else "bold yellow"))
        run = self.query_one("#run-progress", ProgressRow)
        if run.detail == STARTING:  # opened after it ended (or ended before its first batch): say how it ended
            done = len(self.history.get("loss", []))
            epochs = max(getattr(self, "epochs", done), done)
            run.set(done, max(epochs, 1), f"{done} of {epochs} epochs · {status or ('finished' if ok else 'ended')}")
        elif ok:
            run.set(1, 1, run.detail.split(" · ", 1)[-1])  # without the ETA; the last update may predate the last batch
        line = Text()
        if "plots" in files:
            line.append("curves ", style="dim")
            line.append(display_path(files["plots"]))
        if "model" in files:
            line.append("  model ", style="dim")
            line.append(Path(files["model"]).name)
        self.query_one("#training-files", Static).update(line)
