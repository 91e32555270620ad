"""The learning-rate finder's result: the smoothed loss against the rate (textual-plotext, log scale),
the suggested rate marked, and Apply (A) to make it the hyper params' init_rate."""

from __future__ import annotations

import math
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label
from textual_plotext import PlotextPlot

from cnn_tui.tui.widgets.tables import display_path

APPLY = "apply"


def read_sweep(path: Path) -> tuple[list[float], list[float]]:
    """The rates and smoothed losses of a finder's ``lr_find.csv`` (rows that do not parse are left out)."""
    rates, smoothed = [], []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split(",")
        try:
            rate, value = float(parts[0]), float(parts[2])
        except (IndexError, ValueError):
            continue
        if rate > 0 and math.isfinite(value):
            rates.append(rate)
            smoothed.append(value)
    return rates, smoothed


class RateCurve(PlotextPlot):
    """Smoothed loss against log10 of the rate; the suggestion as a vertical line."""

    def __init__(self, rates: list[float], smoothed: list[float], suggestion: float | None) -> None:
        super().__init__(id="rate-curve")
        self.rates, self.smoothed, self.suggestion = rates, smoothed, suggestion

    def on_mount(self) -> None:
        plt = self.plt
        plt.title("Smoothed loss against the learning rate")
        plt.xlabel("log10(rate)")
        if self.rates:
            xs = [math.log10(r) for r in self.rates]
            cap = min(max(self.smoothed), self.smoothed[0] * 1.6)  # the exploding tail would flatten the curve
            plt.plot(xs, [min(v, cap) for v in self.smoothed], color="cyan", marker="braille")
            if self.suggestion:
                plt.vline(math.log10(self.suggestion), "red")
        self.refresh()


class RateFinderScreen(ModalScreen[str | None]):
    """Dismissed with ``APPLY`` (A, or the button) or None (escape, Close)."""

    BINDINGS = [Binding("escape", "choose(None)", "Close"), Binding("A,a", "choose('apply')", "Apply")]

    def __init__(self, rates: list[float], smoothed: list[float], suggestion: float | None, rule: str,
                 plot: Path | None) -> None:
        super().__init__(classes="dialog-screen")
        self.rates, self.smoothed, self.suggestion, self.rule, self.plot = rates, smoothed, suggestion, rule, plot

    def compose(self) -> ComposeResult:
        with Vertical(id="rate-dialog", classes="dialog") as dialog:
            dialog.styles.width = "90%"
            dialog.styles.height = "80%"
            yield Label("Learning-rate finder", classes="dialog-title")
            said = (f"suggested init_rate {self.suggestion:g} (red line; rule: {self.rule})" if self.suggestion
                    else "no suggestion: the sweep had too few batches")
            if self.plot is not None:
                said += f" · plot: {display_path(self.plot)}"
            yield Label(said, id="rate-suggestion", markup=False)
            yield RateCurve(self.rates, self.smoothed, self.suggestion)
            with Horizontal(classes="dialog-buttons"):
                if self.suggestion:
                    yield Button("Apply as init_rate (A)", variant="primary", id="apply", compact=True)
                yield Button("Close (esc)", id="close", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(APPLY if event.button.id == "apply" else None)

    def action_choose(self, answer: str | None) -> None:
        self.dismiss(answer if self.suggestion else None)
