"""The Evaluation view: test accuracy and loss, the confusion matrix (class names, shaded cells,
distinct diagonal) and precision / recall / F1 per class; how sure those are (95 % intervals,
top-k accuracy) and the calibration (ECE, the reliability bins in text; reliability.png on disk)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import DataTable, Static

from cnn_tui.tui.widgets.progress import ProgressRow
from cnn_tui.tui.widgets.tables import (
    display_path,
    fill_confusion,
    fill_report,
    key_values,
    number,
    percent,
)


def _span(interval: Any, scale: float = 1.0) -> Text:
    """`` (96.7–99.4)``: a 95 % interval, dim; empty when there is none."""
    if interval is None:
        return Text("")
    digits = 1 if scale == 100 else 4
    return Text(f" ({interval.low * scale:.{digits}f}–{interval.high * scale:.{digits}f}, 95 %)", style="dim")


def calibration_text(trust: Any) -> Text:
    """ECE (before and after the model's temperature) and the reliability bins, in text."""
    from cnn_tui.core.training.uncertainty import reliability_lines  # noqa: PLC0415 — numpy at import (see show)

    text = Text()
    text.append("Calibration", style="bold")
    text.append(f" · ECE {trust.ece:.3f}")
    if trust.ece_before is not None:
        text.append(f" with temperature {trust.temperature:.3f} (without: {trust.ece_before:.3f})")
    else:
        text.append(" · not calibrated (V trains with validation and calibration)", style="dim")
    text.append("\n  confidence   images  mean conf.  accuracy  █ accuracy │ confidence\n", style="dim")
    for span, images, confidence, accuracy, bar in reliability_lines(trust.reliability):
        text.append(f"  {span:<11} {images:>7,}  {confidence:>10}  {accuracy:>8}  {bar}\n")
    return text


SIDE_MARGIN = 3  # a box's right margin (2) and a column for the scroll bar


class EvaluationView(VerticalScroll):
    class CellChosen(Message):
        """Enter on a confusion-matrix cell: list the test images of class ``true`` predicted as ``predicted``."""

        def __init__(self, true: int, predicted: int) -> None:
            super().__init__()
            self.true, self.predicted = true, predicted

    def compose(self) -> ComposeResult:
        yield Static(Text("Not evaluated yet: e evaluates the model on the test set, p adds the confusion matrix.",
                          style="dim"), id="evaluation-title")
        yield ProgressRow("Predict", id="predict-progress")
        yield Static("", id="metrics")
        with Horizontal(id="evaluation-body"):
            with Vertical(id="confusion-box"):
                yield Static(Text("Confusion matrix · rows: true class · columns: predicted", style="bold"),
                             id="confusion-title")
                yield DataTable(id="confusion-table", cursor_type="cell", zebra_stripes=False)
                yield Static(Text("Enter: a cell's images · T: top losses", style="dim"), id="confusion-hint")
            with Vertical(id="report-box"):
                yield Static(Text("Per-class report", style="bold"), id="report-title")
                yield DataTable(id="report-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="calibration")
        yield Static("", id="evaluation-files")

    def on_mount(self) -> None:
        try:
            self.query_one("#predict-progress").display = False
            self.query_one("#evaluation-body").display = False
        except NoMatches:  # quit while the views were mounting: its children are already gone
            return

    def on_resize(self) -> None:
        self.fit_layout()

    def fit_layout(self) -> None:
        """Matrix and report side by side only where both fit whole; else one above the other, so
        no column (the report's support, its intervals) is cut at 120 columns."""
        try:
            body = self.query_one("#evaluation-body")
            confusion = self.query_one("#confusion-table", DataTable)
            report = self.query_one("#report-table", DataTable)
        except NoMatches:
            return
        matrix = confusion.virtual_size.width + SIDE_MARGIN if self.query_one("#confusion-box").display else 0
        fits = matrix + report.virtual_size.width + SIDE_MARGIN <= self.scrollable_content_region.width
        body.set_class(bool(matrix) and fits, "-side")

    def focus_matrix(self) -> None:
        table = self.query_one("#confusion-table", DataTable)
        if table.row_count and self.query_one("#confusion-box").display:
            table.focus()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        if event.data_table.id != "confusion-table":
            return
        event.stop()
        row, column = event.coordinate.row, event.coordinate.column
        if column > 0:  # column 0 holds the true class's name
            self.post_message(self.CellChosen(row, column - 1))

    def show_progress(self, done: int, total: int, speed: float) -> None:
        row = self.query_one("#predict-progress", ProgressRow)
        row.display = True
        row.set(done, total, f"{done:,} of {total:,} images · {speed:,.0f} images/s")

    def show(self, evaluation: Any, *, confusion: bool, title: str, files: dict[str, Any] | None = None) -> None:
        self.query_one("#predict-progress").display = False
        self.query_one("#evaluation-title", Static).update(Text(title, style="bold"))
        auc = evaluation.roc_auc()
        from cnn_tui.core.training.uncertainty import assess  # noqa: PLC0415 — numpy at import: not before the first frame

        trust = assess(evaluation)
        iv = trust.intervals
        rows = [("test accuracy", Text.assemble((f"{percent(evaluation.accuracy)} %", "bold"), _span(iv.accuracy, 100))),
                ("test loss", number(evaluation.loss)), ("test images", f"{evaluation.samples:,}")]
        if auc is not None:
            rows.append(("ROC AUC" + (" (one-vs-rest)" if len(evaluation.class_names) > 2 else ""),
                         Text.assemble(number(auc), _span(iv.roc_auc))))
        rows.append(("macro F1", Text.assemble(number(iv.macro_f1.value), _span(iv.macro_f1))))
        rows += [(f"top-{k} accuracy", f"{percent(v)} %") for k, v in trust.top_k.items()]
        if getattr(evaluation, "tta", False):  # test-time augmentation: the plain figures beside its own
            plain = evaluation.plain()
            rows += [("test-time augmentation", f"{len(evaluation.views)} views averaged"),
                     ("plain accuracy", f"{percent(plain.accuracy)} %"), ("plain loss", number(plain.loss))]
        self.query_one("#metrics", Static).update(key_values(rows))
        self.query_one("#calibration", Static).update(calibration_text(trust))
        self.query_one("#evaluation-body").display = True
        confusion_box = self.query_one("#confusion-box")
        confusion_box.display = confusion
        if confusion:
            table = self.query_one("#confusion-table", DataTable)
            fill_confusion(table, evaluation.confusion(), evaluation.class_names)
            if self.parent is not None and self.parent.display:  # shown now: the arrows walk its cells
                self.focus_matrix()
        fill_report(self.query_one("#report-table", DataTable), evaluation.report(), iv)
        self.call_after_refresh(self.fit_layout)  # the tables know their widths once measured
        lines = Text()
        for name, label in (("confusion_png", "confusion matrix PNG"), ("reliability", "reliability diagram PNG"),
                            ("evaluation", "figures"),
                            ("report", "report CSV")):
            if files and name in files:
                lines.append(f"{label}: ", style="dim")
                lines.append(f"{display_path(files[name])}\n")
        self.query_one("#evaluation-files", Static).update(lines)
