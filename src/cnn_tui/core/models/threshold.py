"""A model's operating threshold for one class (``--positive C --target-recall R``), applied.

The screening case: one class (say "disease") is predicted when its probability is at least the
threshold, otherwise the most probable of the other classes. Choosing the threshold is
``core.training.thresholds``'s (on the validation share); this module holds the value a model file
records and applies it to probabilities (``decide``). A model without one predicts the argmax.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.errors import ModelError

METRICS = ("recall", "precision")


@dataclass(frozen=True)
class Threshold:
    """Predict ``positive`` when its probability ≥ ``value``; chosen for ``metric`` ≥ ``target``."""

    positive: str  # the class's name
    value: float
    metric: str = "recall"  # recall | precision: what the target is of
    target: float | None = None  # None: set by hand
    reached: float | None = None  # the metric on the validation share at ``value``

    def as_dict(self) -> dict[str, Any]:
        return {"positive": self.positive, "value": self.value, "metric": self.metric, "target": self.target,
                "reached": self.reached}

    def describe(self) -> str:
        text = f"{self.positive} when its probability ≥ {self.value:.4f}"
        if self.target is not None:
            text += f" (target {self.metric} {self.target:g}"
            text += f", {self.reached:.3f} on validation)" if self.reached is not None else ")"
        return text


def decide(probabilities: np.ndarray, class_names: list[str], threshold: Threshold | None) -> np.ndarray:
    """The predicted class of each row: the argmax, or with ``threshold`` its class when its probability
    reaches the threshold and otherwise the argmax of the other classes."""
    probabilities = np.asarray(probabilities)
    if threshold is None or threshold.positive not in class_names:
        return probabilities.argmax(axis=-1)
    k = class_names.index(threshold.positive)
    others = probabilities.copy()
    others[..., k] = -np.inf
    return np.where(probabilities[..., k] >= threshold.value, k, others.argmax(axis=-1))


def recorded_threshold(meta: dict[str, Any], class_names: list[str], path: Path) -> Threshold | None:
    """The file's threshold; None for a file with none (every file written before it existed)."""
    value = meta.get("threshold")
    if value is None:
        return None

    def damaged(why: str) -> ModelError:
        shown = json.dumps(value)
        return ModelError(f"damaged model file: its threshold {shown[:60]} {why}", path=path)

    if not isinstance(value, dict):
        raise damaged("is not an object")
    positive, number = value.get("positive"), value.get("value")
    if positive not in class_names:
        raise damaged("names no class of the model")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 1:
        raise damaged("has no value in [0, 1]")
    metric = value.get("metric", "recall")
    if metric not in METRICS:
        raise damaged("has an unknown metric")
    target, reached = value.get("target"), value.get("reached")
    for extra in (target, reached):
        if extra is not None and (isinstance(extra, bool) or not isinstance(extra, (int, float)) or math.isnan(extra)):
            raise damaged("has a target that is not a number")
    return Threshold(positive, float(number), metric, None if target is None else float(target),
                     None if reached is None else float(reached))
