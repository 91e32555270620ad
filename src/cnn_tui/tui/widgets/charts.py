"""Training curves drawn in the terminal with textual-plotext (accuracy and loss per epoch), with the
epoch early stopping kept marked by a vertical line."""

from __future__ import annotations

from rich.text import Text
from textual_plotext import PlotextPlot

SERIES = {
    "accuracy": (("accuracy", "train", "cyan"), ("val_accuracy", "validation", "orange")),
    "loss": (("loss", "train", "cyan"), ("val_loss", "validation", "orange")),
}


KEPT_COLOUR = "green"


def legend(validation: bool = True, kept: int | None = None) -> Text:
    """One legend line for both charts: plotext draws its legend over the curves in short plots."""
    text = Text.assemble(("━━ ", "cyan"), "train")
    if validation:
        text.append_text(Text.assemble("   ", ("━━ ", "dark_orange"), "validation"))
    if kept is not None:
        text.append_text(Text.assemble("   ", ("│ ", KEPT_COLOUR), f"kept epoch {kept} (early stopping)"))
    return text


class HistoryChart(PlotextPlot):
    """One metric (accuracy or loss) per epoch, training and validation lines."""

    def __init__(self, metric: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="history-chart")
        self.metric = metric
        self.history: dict[str, list[float]] = {}
        self.kept: int | None = None

    def on_mount(self) -> None:
        self.show({})

    def show(self, history: dict[str, list[float]], kept: int | None = None) -> None:
        """``kept``: the epoch whose weights early stopping restored (1-based), marked on the curves."""
        self.history = {k: list(v) for k, v in history.items()}
        self.kept = kept
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.metric.capitalize())
        plt.xlabel("epoch")
        epochs = 0
        for key, _label, colour in SERIES[self.metric]:
            values = self.history.get(key) or []
            if values:
                epochs = max(epochs, len(values))
                xs = list(range(1, len(values) + 1))
                plt.plot(xs, values, color=colour, marker="braille")
        if epochs and kept is not None:
            plt.vline(kept, KEPT_COLOUR)
        if epochs:
            # whole epochs only: plotext would otherwise label 1.5, 2.5...
            step = max(1, epochs // 8)
            ticks = list(range(1, epochs + 1, step))
            plt.xticks(ticks, [str(t) for t in ticks])
            if self.metric == "accuracy":
                lowest = min(v for key, _, _ in SERIES["accuracy"] for v in self.history.get(key) or [1.0])
                plt.ylim(max(0.0, lowest - 0.02), 1.0)
        else:
            plt.xticks([1], ["1"])
        self.refresh()
