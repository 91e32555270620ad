"""The Tuning view: the plan (combinations × folds), progress, a live table of folds, and the
results per combination, best first and highlighted."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from cnn_tui.core.events import SystemSample, TuningProgress
from cnn_tui.core.runs.system_monitor import describe
from cnn_tui.tui.widgets.progress import ProgressRow, format_eta
from cnn_tui.tui.widgets.tables import (
    add_fold,
    display_path,
    fill_tuning,
    fold_columns,
    reset,
)


def noise_note(table: list[dict[str, Any]]) -> str:
    """What ≈ means, when some combination is within the folds' spread of the best."""
    from cnn_tui.core.tuning.search import near_best  # noqa: PLC0415 — numpy at import: after a search only

    near = near_best(table)
    others = sum(near[1:])
    return (f"≈ {others} within the folds' spread of ★ (mean ± std overlap): the folds cannot tell them apart"
            if others else "")


class TuningView(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(Text("Not tuned yet: u runs a grid search over every csv hyper field.", style="dim"),
                     id="tuning-title")
        yield ProgressRow("Fits", id="tuning-progress")
        yield Static("", id="tuning-system")
        with Vertical(id="results-box"):
            yield Static("", id="results-title")
            yield DataTable(id="results-table", cursor_type="row", zebra_stripes=True)
        with Vertical(id="folds-box"):
            yield Static(Text("Folds as they finish", style="bold"), id="folds-title")
            yield DataTable(id="folds-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for name in ("#tuning-progress", "#results-box", "#folds-box"):
            self.query_one(name).display = False

    def start(self, plan: Any) -> None:
        self.columns = plan.columns
        self.cv = plan.cv
        tuned = ", ".join(plan.columns) if plan.columns else "nothing (no csv field holds several values)"
        if plan.strategy in ("halving", "hyperband"):  # rounds: the fits are known as planned, not a product
            over = "images" if plan.strategy == "halving" else "epochs"
            what = (f"Tuning ({plan.strategy}, rounds over {over}) {len(plan.candidates)} combination(s) × "
                    f"{plan.cv} folds: {plan.fits} fits planned")
        elif plan.strategy == "tpe":  # adaptive: which combinations run is learnt as it goes
            what = (f"Tuning (TPE) {plan.fits // max(plan.cv, 1)} of {len(plan.candidates)} combination(s) × "
                    f"{plan.cv} folds: at most {plan.fits} fits")
        else:
            what = f"Tuning {len(plan.candidates)} combination(s) × {plan.cv} folds = {plan.fits} fits"
        self.query_one("#tuning-title", Static).update(Text(
            f"{what} on {plan.samples:,} images · tuned: {tuned}", style="bold"))
        self.query_one("#tuning-progress").display = True
        self.query_one("#tuning-system").display = False  # until this search's first sample
        self.query_one("#tuning-progress", ProgressRow).set(0, 1, f"0 of {plan.fits} fits")
        self.query_one("#results-box").display = False
        self.query_one("#folds-box").display = True
        reset(self.query_one("#folds-table", DataTable), fold_columns(plan.columns))

    def show_progress(self, event: TuningProgress) -> None:
        self.query_one("#tuning-progress", ProgressRow).set(
            event.batches_done, event.batches_total,
            f"{event.fits_done} of {event.fits_total} fits · {format_eta(event.eta_seconds)}")

    def show_system(self, event: SystemSample) -> None:
        """The machine's latest sample (GPUs, CPU, memory) on one line under the progress."""
        system = self.query_one("#tuning-system", Static)
        system.update(describe(event, width=max(self.size.width - 2, 20)))
        system.display = True

    def show_fold(self, row: dict[str, Any]) -> None:
        add_fold(self.query_one("#folds-table", DataTable), row, self.columns)

    def show_result(self, result: Any, *, stopped: bool, best_path: Any = None) -> None:
        """The per-combination table: 'Grid search results', or 'Partial …' after a stop."""
        self.columns, self.cv = result.columns, result.plan.cv
        if not self.query_one("#folds-box").display:  # shown without a live run (e.g. restored)
            self.query_one("#folds-box").display = True
            table = self.query_one("#folds-table", DataTable)
            reset(table, fold_columns(self.columns))
            for row in result.rows:
                add_fold(table, row, self.columns)
        self.query_one("#tuning-progress").display = False
        self.query_one("#tuning-system").display = False
        kind = {"grid": "grid search", "random": "random search", "halving": "halving search",
                "hyperband": "hyperband search", "tpe": "TPE search"}.get(result.plan.strategy, "search")
        title = f"Partial {kind} results" if stopped else f"{kind[0].upper()}{kind[1:]} results"
        detail = f" · {len(result.rows)} of {result.plan.fits} fits"
        hint = " · b applies the best (★) to the hyper params" if result.best() is not None else ""
        if noise_note(result.table()):
            hint += f" · {noise_note(result.table())}"
        importance = getattr(result, "importance", None) or {}  # a result restored from files may have none
        if importance:  # which fields mattered (fANOVA), most first
            hint += " · mattered: " + ", ".join(f"{k} {v:.0%}" for k, v in importance.items())
        self.query_one("#results-title", Static).update(
            Text.assemble((title, "bold"), detail, (hint, "green")))
        self.query_one("#results-box").display = True
        fill_tuning(self.query_one("#results-table", DataTable), result.table(), self.columns, self.cv)
        message = Text(result.message, style="yellow" if stopped else "green")
        if best_path:
            message.append(f" · best params: {display_path(best_path)}", style="dim")
        self.query_one("#tuning-title", Static).update(message)
