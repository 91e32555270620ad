"""Calibration: how far a model's confidence is from its accuracy, and temperature scaling.

The expected calibration error (ECE) bins the test images by their top probability (15 equal
bins) and averages |accuracy − confidence| over the bins, weighted by their images. Temperature
scaling (Guo et al. 2017, as Ludwig does) divides the logits by one number T fitted on the
held-out validation share: T > 1 softens an over-confident model. cnn-tui's networks end in a
softmax, so the logits are log p (up to a constant each image, which softmax ignores):
calibrated = softmax(log p / T) ∝ p^(1/T) (``core.models.temperature``). The argmax never changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnn_tui.core.models.temperature import TINY, scaled

__all__ = ["scaled"]  # re-exported: the one way a temperature is applied lives in core.models

BINS = 15
T_RANGE = (0.05, 20.0)  # the search range of T; outside it the validation share says little


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    images: int
    confidence: float  # mean top probability of its images (NaN when empty)
    accuracy: float  # share of them predicted right


def reliability(probabilities: np.ndarray, y_true: np.ndarray, bins: int = BINS) -> list[ReliabilityBin]:
    """Equal-width bins of the top probability, (low, high], the first closed at 0."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    images = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / images
        accuracy = np.bincount(which, weights=correct, minlength=bins) / images
    return [ReliabilityBin(float(edges[i]), float(edges[i + 1]), int(images[i]), float(mean_confidence[i]),
                           float(accuracy[i])) for i in range(bins)]


def expected_calibration_error(probabilities: np.ndarray, y_true: np.ndarray, bins: int = BINS) -> float:
    rows = reliability(probabilities, y_true, bins)
    total = sum(b.images for b in rows)
    if not total:
        return math.nan
    return float(sum(b.images * abs(b.accuracy - b.confidence) for b in rows if b.images) / total)


def negative_log_likelihood(probabilities: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), TINY, 1.0)) / temperature
    top = logits.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float((log_total - logits[np.arange(len(y_true)), np.asarray(y_true)]).mean())


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The T that minimises the negative log-likelihood of ``y_true`` (bounded search over log T,
    scipy's ``minimize_scalar``); 1.0 when there is nothing to fit on."""
    from scipy.optimize import minimize_scalar  # noqa: PLC0415 — scipy loads only when a model is calibrated

    if len(y_true) == 0:
        return 1.0
    low, high = (math.log(t) for t in T_RANGE)
    found = minimize_scalar(lambda log_t: negative_log_likelihood(probabilities, y_true, math.exp(log_t)),
                            bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    temperature = math.exp(float(found.x))
    # never worse than leaving the model as it is
    if negative_log_likelihood(probabilities, y_true, temperature) > negative_log_likelihood(probabilities, y_true, 1.0):
        return 1.0
    return round(temperature, 6)
