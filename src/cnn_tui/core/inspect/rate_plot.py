"""The learning-rate finder's figure and table: smoothed loss against the rate, the suggestion marked."""

from __future__ import annotations

from pathlib import Path

from cnn_tui.core import fileio
from cnn_tui.core.inspect.reports import _figure, _save
from cnn_tui.core.training.lr_finder import RateSweep

SWEEP_COLUMNS = ["rate", "loss", "smoothed_loss"]


def write_sweep_csv(sweep: RateSweep, path: Path) -> Path:
    return fileio.write_csv(path, SWEEP_COLUMNS, [[f"{r:.6g}", f"{loss:.6g}", f"{s:.6g}"] for r, loss, s in sweep.rows()])


def plot_sweep(sweep: RateSweep, path: Path, title: str = "Learning-rate finder") -> Path:
    """Each batch's loss (faint) and the smoothed loss against the rate (log scale), the suggestion marked."""
    figure = _figure(7, 4.2)
    axis = figure.subplots()
    axis.plot(sweep.rates, sweep.losses, color="tab:blue", alpha=0.25, linewidth=1, label="loss per batch")
    axis.plot(sweep.rates, sweep.smoothed, color="tab:blue", linewidth=2, label="smoothed loss")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss")
    if sweep.smoothed:  # the exploding tail would squash the curve: cap the axis at a few times the start
        low, first = min(sweep.smoothed), sweep.smoothed[0]
        axis.set_ylim(low - 0.05 * abs(low), max(first, low) * 1.6 + 1e-9)
    if sweep.suggestion is not None:
        axis.axvline(sweep.suggestion, color="tab:red", linestyle="--", linewidth=1.2,
                     label=f"suggested {sweep.suggestion:.2g} ({sweep.rule})")
    axis.set_title(fileio.readable(title))
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(True, which="both", alpha=0.3)
    return _save(figure, path)
