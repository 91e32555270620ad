"""The Model view: the network summary (layer, type, output shape, params) and totals."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cnn_tui.tui.widgets.tables import fill_summary, shown


class ModelView(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(Text("No network model yet: i builds one from the hyper params, M loads a .keras file.",
                          style="dim"), id="model-title")
        yield DataTable(id="summary-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="model-totals")

    def show(self, net: Any, note: str) -> None:
        title = self.query_one("#model-title", Static)
        table = self.query_one("#summary-table", DataTable)
        totals = self.query_one("#model-totals", Static)
        if net is None:
            table.clear(columns=True)
            totals.update("")
            return
        shape = f"{net.image_size}×{net.image_size}×{net.channels}"
        classes = shown(", ".join(net.class_names))
        title.update(Text.assemble(('Model "sequential" ', "bold"), f"· {note} · input {shape} · "
                                   f"{net.num_classes} classes: {classes}"))
        totals.update(fill_summary(table, net))
