"""Tables: model summary, epochs, class counts, confusion matrix, per-class report, tuning results.

Each ``fill_*`` function turns core results into rows of a Textual ``DataTable``
(scrollable, keyboard-navigable); small key/value blocks are Rich tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from cnn_tui.core.fileio import readable
from cnn_tui.core.params.fields import format_text

if TYPE_CHECKING:  # the Data view on the first screen needs neither
    from textual.widgets import DataTable

    from cnn_tui.core.models.model import NetModel

BAR = "█"
# how a run's status is drawn, in the Runs view and the compare screen
STATUS_STYLES = {
    "running": "bold green",
    "finished": "",
    "stopped": "yellow",
    "failed": "red",
    "interrupted": "magenta",
}


def right(value: Any, style: str = "") -> Text:
    return Text(str(value), style=style, justify="right")


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * 100:.{digits}f}"


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_duration(seconds: float | None) -> str:
    """``1:02:03``; ``-`` when not known (a run still running)."""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def shown(text: str) -> str:
    """A name as the screen can show it: bytes of a file or folder name that are not UTF-8 as \\xNN."""
    return readable(str(text))


def display_path(path: Any) -> str:
    """A path as short as it can be read: relative to the working folder when inside it."""
    path = Path(path)
    try:
        return shown(str(path.resolve().relative_to(Path.cwd().resolve())))
    except ValueError:
        home = Path.home()
        return shown("~/" + str(path.relative_to(home)) if path.is_relative_to(home) else str(path))


def reset(table: DataTable, columns: Sequence[str | tuple[str, str]], *, left: int = 1) -> None:
    """Clear rows and columns, then add ``columns`` (a name, or (label, key)); labels after the
    first ``left`` columns are right-aligned, over their numbers."""
    table.clear(columns=True)
    for i, column in enumerate(columns):
        label, key = column if isinstance(column, tuple) else (column, column)
        table.add_column(Text(label, justify="left" if i < left else "right"), key=key)


def key_values(rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return table


def params_table(values: dict[str, Any], labels: dict[str, str], title: str, note: str = "") -> Group:
    """A heading (not a table title: those wrap at the table's width) over label / value rows."""
    rows = ((labels.get(k, k), format_text(v) if v is not None else "—") for k, v in values.items())
    parts: list[Any] = [Text(title, style="bold", overflow="ellipsis", no_wrap=True), key_values(rows)]
    if note:
        parts.append(Text(note, style="italic dim"))
    return Group(*parts)


def counts_table(class_names: Sequence[str], counts: Sequence[int], width: int = 24) -> Table:
    """Images per class with a bar each, so a lopsided dataset shows at a glance."""
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("class", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("images", justify="right")
    table.add_column("", no_wrap=True)
    most = max(counts) if counts else 1
    for name, count in zip(class_names, counts):
        table.add_row(Text(shown(name)), f"{count:,}", Text(BAR * max(1, round(width * count / most)), style="cyan"))
    return table


def fill_summary(table: DataTable, net: NetModel) -> str:
    """Layer rows as Keras prints them; returns the totals line."""
    from cnn_tui.core.models.model import readable_size  # noqa: PLC0415 — the Data view on the first screen needs no model

    reset(table, ["Layer", "Type", "Output shape", ("Params", "params")], left=3)
    for row in net.summary_rows():
        # a foreign model's layer names are text, not markup
        table.add_row(Text(row.name), Text(row.kind), Text(row.output_shape), right(f"{row.params:,}"))
    t = net.totals()
    return (
        f"Total params: {t.total:,} ({readable_size(t.total_bytes)})   "
        f"Trainable: {t.trainable:,} ({readable_size(t.trainable_bytes)})   "
        f"Non-trainable: {t.non_trainable:,} ({readable_size(t.non_trainable_bytes)})"
    )


EPOCH_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def reset_epochs(table: DataTable) -> None:
    reset(table, EPOCH_COLUMNS)


def add_epoch(table: DataTable, epoch: int, logs: dict[str, float], seconds: float | None) -> None:
    def cell(key: str) -> Text:
        value = logs.get(key)
        return right(number(value) if value is not None else "—")

    table.add_row(right(epoch), cell("loss"), cell("accuracy"), cell("val_loss"), cell("val_accuracy"),
                  right(f"{seconds:.1f}" if seconds is not None else "—"), key=str(epoch))
    table.move_cursor(row=table.row_count - 1)
    table.call_after_refresh(table.scroll_end, animate=False)  # the newest epoch stays in sight


def short(name: str, limit: int = 12) -> str:
    name = shown(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def confusion_style(count: int, row_total: int, diagonal: bool) -> Style:
    """Cells shaded by their share of the true class: green on the diagonal, red off it."""
    if count == 0:
        return Style(color="grey42")
    share = count / max(row_total, 1)
    level = 0.25 + 0.75 * share
    if diagonal:
        background = (int(20 + 20 * level), int(60 + 120 * level), int(30 + 40 * level))
    else:
        background = (int(70 + 150 * level), int(20 + 20 * level), int(20 + 20 * level))
    return Style(color="white", bold=diagonal, bgcolor=f"rgb({background[0]},{background[1]},{background[2]})")


def fill_confusion(table: DataTable, matrix: Any, class_names: Sequence[str]) -> None:
    """Rows are the true class, columns the predicted class, labelled with class names."""
    reset(table, [("true \\ pred", "true"), *((short(n), f"p{i}") for i, n in enumerate(class_names))])
    for i, name in enumerate(class_names):
        total = int(sum(int(c) for c in matrix[i]))
        cells = [Text(f" {int(c)} ", style=confusion_style(int(c), total, i == j), justify="right")
                 for j, c in enumerate(matrix[i])]
        table.add_row(Text(shown(name), style="bold"), *cells, key=str(i))


def fill_report(table: DataTable, rows: Sequence[Any], intervals: Any = None) -> None:
    """Precision, recall, F1 and support per class; with ``intervals`` (``Intervals``), each class's
    95 % intervals of precision and recall beside them."""
    extra = [("precision 95 %", "precision_ci"), ("recall 95 %", "recall_ci")] if intervals is not None else []
    reset(table, ["class", ("precision", "precision"), ("recall", "recall"), ("F1", "f1"), ("support", "support"),
                  *extra])
    for i, r in enumerate(rows):
        style = "italic" if r.label.endswith(" avg") else ""
        spans = []
        if intervals is not None:
            per_class = i < len(intervals.precision)
            spans = [right(f"{x.low:.3f}–{x.high:.3f}" if per_class else "", "dim")
                     for x in ((intervals.precision[i], intervals.recall[i]) if per_class else (None, None))]
        table.add_row(Text(r.label, style=style), right(number(r.precision)), right(number(r.recall)),
                      right(number(r.f1)), right(f"{r.support:,}"), *spans)


def fold_columns(columns: Sequence[str]) -> list[str | tuple[str, str]]:
    # "trained" (epochs done), not "epochs": a search may tune the epochs field, and keys must differ
    return [*columns, "fold", ("trained", "trained"), ("accuracy %", "accuracy"), "loss", ("seconds", "seconds"),
            "status"]


def fold_status(row: dict[str, Any]) -> Text:
    """ok, "pruned at epoch k", or "failed: why"; a fit run again after its worker died says so."""
    status, reason = row.get("status"), str(row.get("reason") or "")
    retried = f" (retried {row['retries']}x)" if row.get("retries") else ""
    if status in ("ok", "finished"):  # a reason: retried at a smaller batch after running out of memory
        return Text(f"ok ({reason}){retried}" if reason else "ok" + retried, style="yellow" if reason else "green")
    if status == "pruned":
        return Text((reason or "pruned") + retried, style="yellow")
    return Text(f"failed: {reason}{retried}", style="red")


def add_fold(table: DataTable, row: dict[str, Any], columns: Sequence[str]) -> None:
    status = fold_status(row)
    table.add_row(*(right(format_text(row.get(c))) for c in columns), right(row.get("fold", "")),
                  right(format_text(row.get("epochs_done", ""))),
                  right(percent(row.get("accuracy"))), right(number(row.get("loss"))),
                  right(f"{row.get('fit_seconds', 0):.1f}"), status)
    table.move_cursor(row=table.row_count - 1)


def fill_tuning(table: DataTable, summary: Sequence[dict[str, Any]], columns: Sequence[str], cv: int) -> None:
    """One row per combination, best first; the best row is marked and bold, and ≈ marks those within
    the folds' spread of it (mean ± std across folds overlapping): the folds cannot tell them apart."""
    from cnn_tui.core.tuning.search import near_best  # noqa: PLC0415 — numpy at import: after a search only

    near = near_best(list(summary))
    # "trained": the epochs of the combination's last round (hyperband trains most combinations less)
    # the figures before the tuned values: with several tuned fields at 80 columns the values scroll
    # sideways, never mean loss, folds and trained (the ★ row's values are also in the folds table)
    reset(table, ["", ("mean acc %", "mean"), ("std %", "std"), ("mean loss", "loss"), "folds",
                  ("trained", "trained"), *columns, "note"])
    for rank, row in enumerate(summary):
        best = rank == 0 and row.get("folds") and not math.isnan(row["mean_accuracy"])
        style = "bold green" if best else ""
        done = row.get("folds", 0)
        table.add_row(
            Text("★" if best else ("≈" if near[rank] and done else ""), style="bold yellow" if best else "yellow"),
            right(percent(row["mean_accuracy"]) if done else "—", style),
            right(percent(row["std_accuracy"]) if done else "—"),
            right(number(row["mean_loss"]) if done else "—"),
            right(f"{done}/{cv}"),
            right(format_text(row.get("epochs_done") or "")),
            *(right(format_text(row.get(c)), style) for c in columns),
            Text(f"{row['pruned']} pruned" if row.get("pruned") and not row.get("reason") else
                 str(row.get("reason") or ""), style="yellow" if row.get("pruned") else "red"),
        )
