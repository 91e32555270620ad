"""How far an evaluation's figures can be trusted: their 95 % intervals, the calibration (ECE and
the reliability bins, before and after the model's temperature) and top-k accuracy, as one value
for evaluation.json, ``--json``, the CLI's tables and the TUI's Evaluation view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui.core.training import calibration, intervals
from cnn_tui.core.training.calibration import ReliabilityBin
from cnn_tui.core.training.intervals import Intervals

TOP_K = (3, 5)


def top_k_accuracy(y_true: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the k most probable (scikit-learn's)."""
    from sklearn.metrics import top_k_accuracy_score  # noqa: PLC0415 — scikit-learn loads lazily (about a second)

    return float(top_k_accuracy_score(y_true, probabilities, k=k, labels=range(probabilities.shape[1])))


@dataclass(frozen=True)
class Trust:
    intervals: Intervals
    ece: float  # of the probabilities the model gives (its temperature applied)
    temperature: float
    ece_before: float | None  # without the temperature; None when the model has none (T = 1)
    reliability: list[ReliabilityBin]
    top_k: dict[int, float]  # k → accuracy, for k < classes

    def as_dict(self, class_names: list[str]) -> dict[str, Any]:
        return {
            "intervals": self.intervals.as_dict(class_names),
            "ece": self.ece, "temperature": self.temperature, "ece_before_temperature": self.ece_before,
            "reliability": [b.__dict__ for b in self.reliability if b.images],
            **{f"top{k}_accuracy": v for k, v in self.top_k.items()},
        }


def assess(evaluation: Any) -> Trust:
    """The intervals, calibration and top-k of an ``Evaluation``."""
    y, probabilities = evaluation.y_true, evaluation.probabilities
    temperature = float(getattr(evaluation, "temperature", 1.0) or 1.0)
    before = None
    if temperature != 1.0:  # undo softmax(log p / T): p^T renormalised gives the model's own probabilities
        before = calibration.expected_calibration_error(calibration.scaled(probabilities, 1.0 / temperature), y)
    classes = probabilities.shape[1]
    return Trust(
        intervals=intervals.bootstrap(y, probabilities, y_pred=evaluation.y_pred),  # a threshold applied
        ece=calibration.expected_calibration_error(probabilities, y), temperature=temperature, ece_before=before,
        reliability=calibration.reliability(probabilities, y),
        top_k={k: top_k_accuracy(y, probabilities, k) for k in TOP_K if classes > k and len(y)},
    )


def with_interval(value: float, interval: intervals.Interval | None, *, percent: bool = True) -> str:
    """``98.6 % (97.9–99.2)`` or ``0.981 (0.975–0.986)``."""
    if percent:
        text = f"{value * 100:.1f} %"
        return text if interval is None else f"{text} ({interval.low * 100:.1f}–{interval.high * 100:.1f})"
    text = f"{value:.3f}"
    return text if interval is None else f"{text} ({interval.low:.3f}–{interval.high:.3f})"


def reliability_lines(bins: list[ReliabilityBin], width: int = 20) -> list[tuple[str, int, str, str, str]]:
    """(range, images, confidence, accuracy, bar) for each non-empty bin; the bar draws accuracy
    (█) against confidence (│), so an over-confident bin's bar stops short of its mark."""
    rows = []
    for b in bins:
        if not b.images:
            continue
        filled = round(b.accuracy * width)
        mark = min(width - 1, round(b.confidence * width))
        bar = ["█" if i < filled else "·" for i in range(width)]
        bar[mark] = "│"
        rows.append((f"{b.low:.2f}–{b.high:.2f}", b.images, f"{b.confidence:.3f}", f"{b.accuracy:.3f}", "".join(bar)))
    return rows
