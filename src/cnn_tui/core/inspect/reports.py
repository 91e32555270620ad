"""Figures (PNG, matplotlib Agg) and tables (CSV) written into a run folder.

Figures are drawn on ``matplotlib.figure.Figure`` objects, not pyplot, so no
global state is shared between threads and no display is ever needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import fileio
from cnn_tui.core.inspect.mistakes import MISCLASSIFIED_COLUMNS, misclassified_rows


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 — matplotlib loads lazily, only when a figure is drawn
    from matplotlib.figure import Figure  # noqa: PLC0415 — matplotlib loads lazily, only when a figure is drawn

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> Path:
    with fileio.atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    return path


def plot_history(history: dict[str, list[float]], path: Path, title: str = "Training",
                 kept_epoch: int | None = None) -> Path:
    """Accuracy and loss per epoch, training vs validation, best validation epoch marked;
    ``kept_epoch``: the epoch early stopping kept, shaded on both plots."""
    figure = _figure(10, 4.2)
    figure.suptitle(fileio.readable(title))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for axis, metric, label in zip(figure.subplots(1, 2), ("accuracy", "loss"), ("Accuracy", "Loss")):
        train = history.get(metric, [])
        val = history.get(f"val_{metric}", [])
        if len(train):
            axis.plot(epochs[: len(train)], train, "o-", color="tab:blue", label=f"training {metric}")
        if len(val):
            axis.plot(epochs[: len(val)], val, "s--", color="tab:orange", label=f"validation {metric}")
            best = int(np.nanargmax(val) if metric == "accuracy" else np.nanargmin(val))
            axis.axvline(best + 1, color="0.6", linestyle=":", linewidth=1)
            late = best + 1 > 0.7 * len(epochs)  # keep the label inside the axes near the right edge
            axis.annotate(
                f"best {val[best]:.4f}" if metric == "accuracy" else f"best {val[best]:.4g}",
                (best + 1, val[best]), textcoords="offset points",
                xytext=(-6 if late else 6, 6), ha="right" if late else "left", fontsize=8,
            )
        if kept_epoch is not None:
            axis.axvspan(kept_epoch - 0.4, kept_epoch + 0.4, color="tab:green", alpha=0.15,
                         label=f"kept: epoch {kept_epoch}")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(True, alpha=0.3)
        if len(epochs):
            axis.set_xticks(epochs if len(epochs) <= 20 else epochs[:: math.ceil(len(epochs) / 20)])
        if train or val or kept_epoch is not None:
            axis.legend(loc="lower right" if metric == "accuracy" else "upper right", fontsize=8)
    return _save(figure, path)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: Path, title: str = "Confusion matrix") -> Path:
    """Counts with class names on both axes; rows true, columns predicted; each cell annotated."""
    class_names = [fileio.readable(name) for name in class_names]  # matplotlib cannot draw non-UTF-8 bytes
    n = len(class_names)
    side = max(4.5, min(16.0, 0.55 * n + 3))
    figure = _figure(side + 1, side)
    axis = figure.subplots()
    # Shade by share of the true class, so a small class's errors show as clearly as a big one's.
    row_sums = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_sums, out=np.zeros(matrix.shape, dtype=float), where=row_sums > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    slanted = max(map(len, class_names)) > 3  # long names slant so they do not overlap
    axis.set_xticks(range(n), labels=list(class_names), rotation=45 if slanted else 0, ha="right" if slanted else "center")
    axis.set_yticks(range(n), labels=list(class_names))
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    axis.set_title(f"{title}: {correct} of {total} correct ({correct / max(total, 1):.2%})")
    if n <= 30:
        fontsize = 9 if n <= 12 else 7
        for i in range(n):
            for j in range(n):
                colour = "white" if shares[i, j] > 0.5 else ("0.65" if matrix[i, j] == 0 else "black")
                weight = "bold" if i == j else "normal"
                axis.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, fontsize=fontsize, fontweight=weight)
    return _save(figure, path)


def plot_reliability(bins: Sequence[Any], path: Path, *, ece: float, ece_before: float | None = None,
                     temperature: float = 1.0, title: str = "Reliability") -> Path:
    """Accuracy against confidence per bin of the top probability (``calibration.reliability``), with the
    diagonal a calibrated model lies on and the images per bin below."""
    figure = _figure(5.2, 5.6)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    filled = [b for b in bins if b.images]
    centres = [(b.low + b.high) / 2 for b in filled]
    width = (bins[0].high - bins[0].low) * 0.9 if bins else 0.06
    top.plot([0, 1], [0, 1], ":", color="0.5", label="calibrated")
    top.bar(centres, [b.accuracy for b in filled], width=width, color="tab:blue", alpha=0.75, label="accuracy")
    top.plot([b.confidence for b in filled], [b.accuracy for b in filled], "o", color="tab:red", markersize=3,
             label="mean confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    text = f"ECE {ece:.3f}" + (f" (before T={temperature:.2f}: {ece_before:.3f})" if ece_before is not None else "")
    top.set_title(f"{fileio.readable(title)}: {text}")
    top.legend(loc="upper left", fontsize=8)
    top.grid(True, alpha=0.3)
    bottom.bar(centres, [b.images for b in filled], width=width, color="0.5")
    bottom.set_xlabel("top probability (confidence)")
    bottom.set_ylabel("images")
    bottom.grid(True, alpha=0.3)
    return _save(figure, path)


def plot_class_curves(evaluation: Any, roc_path: Path, pr_path: Path) -> tuple[Path, Path]:
    """Each class's ROC and precision–recall curve (one-vs-rest, its probability), with the point the
    predictions sit at marked: a star for the class of the model's operating threshold, a dot for the
    argmax of every other class. A class absent from the test images has no curve."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve  # noqa: PLC0415 — scikit-learn loads lazily (about a second)

    names = [fileio.readable(name) for name in evaluation.class_names]
    threshold = getattr(evaluation, "threshold", None)
    y_true, y_pred, probabilities = np.asarray(evaluation.y_true), evaluation.y_pred, evaluation.probabilities
    side = 6.4 if len(names) <= 10 else 8.0
    roc_figure, pr_figure = _figure(side, side * 0.85), _figure(side, side * 0.85)
    roc, pr = roc_figure.subplots(), pr_figure.subplots()
    roc.plot([0, 1], [0, 1], ":", color="0.5")
    colours = [f"C{i % 10}" for i in range(len(names))]
    for k, name in enumerate(names):
        truth = y_true == k
        if not truth.any() or truth.all():
            continue  # one-vs-rest needs both: the curve is undefined
        fpr, tpr, _ = roc_curve(truth, probabilities[:, k])
        precision, recall, _ = precision_recall_curve(truth, probabilities[:, k])
        chosen = y_pred == k
        point_tpr = float((chosen & truth).sum() / truth.sum())
        point_fpr = float((chosen & ~truth).sum() / max((~truth).sum(), 1))
        point_precision = float((chosen & truth).sum() / chosen.sum()) if chosen.any() else 1.0
        roc.plot(fpr, tpr, color=colours[k], linewidth=1.2, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        average = average_precision_score(truth, probabilities[:, k])
        pr.plot(recall, precision, color=colours[k], linewidth=1.2, label=f"{name} (AP {average:.3f})")
        if threshold is not None and threshold.positive == evaluation.class_names[k]:
            mark = dict(marker="*", markersize=14, markeredgecolor="black", linestyle="none",
                        label=f"{name}: threshold {threshold.value:.3f}")
        else:
            mark = dict(marker="o", markersize=4, linestyle="none")
        roc.plot([point_fpr], [point_tpr], color=colours[k], **mark)
        pr.plot([point_tpr], [point_precision], color=colours[k], **mark)
    for axis, title, xlabel, ylabel in ((roc, "ROC per class", "false positive rate", "true positive rate (recall)"),
                                        (pr, "Precision–recall per class", "recall", "precision")):
        axis.set_xlim(-0.01, 1.01)
        axis.set_ylim(-0.01, 1.01)
        axis.set_title(title + ("; ● the argmax's point" if threshold is None else "; ● argmax, ★ the threshold's point"))
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="lower right" if axis is roc else "lower left", fontsize=7)
    return _save(roc_figure, roc_path), _save(pr_figure, pr_path)


def write_history_csv(history: dict[str, list[float]], path: Path) -> Path:
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds") if history.get(k)]
    epochs = len(history.get("seconds", history.get("loss", [])))
    rows = [[i + 1] + [history[k][i] if i < len(history[k]) else "" for k in keys] for i in range(epochs)]
    return fileio.write_csv(path, ["epoch", *keys], rows)


def write_predictions(evaluation: Any, path: Path) -> Path:
    """Every test image's probabilities, true class and file: the evaluation, rebuildable later
    (``core.runs.results.load_evaluation``) for the Runs view and error analysis."""
    with fileio.atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle, probabilities=evaluation.probabilities.astype(np.float32), y_true=evaluation.y_true,
                files=np.array(evaluation.files, dtype=object).astype(str), class_names=np.array(evaluation.class_names),
                seconds=np.array(evaluation.seconds), temperature=np.array(getattr(evaluation, "temperature", 1.0)),
                threshold=np.array(json.dumps(threshold.as_dict() if (threshold := getattr(evaluation, "threshold", None))
                                              else None)),
            )
    return path


def write_confusion_csv(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    rows = [[name, *map(int, matrix[i])] for i, name in enumerate(class_names)]
    return fileio.write_csv(path, ["true \\ predicted", *class_names], rows)


def write_report_csv(rows: Sequence[Any], path: Path) -> Path:
    table = [[r.label, f"{r.precision:.4f}", f"{r.recall:.4f}", f"{r.f1:.4f}", r.support] for r in rows]
    return fileio.write_csv(path, ["class", "precision", "recall", "f1", "support"], table)


def write_misclassified_csv(evaluation: Any, path: Path, limit: int = 100) -> Path:
    """The most confidently wrong test images (highest loss first), with their loss and top-3 classes."""
    return write_rows_csv(misclassified_rows(evaluation, limit), path, MISCLASSIFIED_COLUMNS)


def write_skipped_csv(skipped: Sequence[Any], path: Path) -> Path:
    return fileio.write_csv(path, ["file", "reason"], [[s.path, s.reason] for s in skipped])


def write_rows_csv(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str] | None = None) -> Path:
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    return fileio.write_csv(path, columns, [[row.get(c, "") for c in columns] for row in rows])

