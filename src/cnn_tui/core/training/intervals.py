"""95 % confidence intervals on test figures: a percentile bootstrap over the test images.

Vectorised so it costs well under a second for 10,000 images. Resampling n images with
replacement and counting them per confusion cell is a draw from Multinomial(n, cell shares), so
the accuracy, per-class precision and recall and macro F1 of every resample come from K² cell
counts a resample, not n images. ROC AUC needs the images themselves: a rank-based AUC on weighted
images (each image's count in the resample), sorted once, with fewer resamples when the test set
is large (``AUC_BUDGET``). The same idea pairs two runs on the same test images: the four cells of
(run A right?, run B right?) give the difference of their accuracies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
SEED = 20260  # fixed: the same evaluation gets the same intervals every time
LEVEL = 0.95
# image × class × resample work the AUC's bootstrap may take (~1 s on a laptop core): above it,
# fewer resamples (at least MIN_AUC_RESAMPLES) for the AUC only
AUC_BUDGET = 4e7
MIN_AUC_RESAMPLES = 200
AUC_CHUNK = 50  # resamples drawn at once for the AUC (bounds memory: CHUNK × n weights)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile-bootstrap interval (``low`` ≤ ``high``; NaN when undefined)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Intervals:
    """Every test figure's interval, from one bootstrap."""

    accuracy: Interval
    macro_f1: Interval
    roc_auc: Interval | None
    precision: list[Interval]  # one a class
    recall: list[Interval]
    resamples: int
    auc_resamples: int

    def as_dict(self, class_names: list[str]) -> dict[str, Any]:
        return {
            "level": LEVEL, "resamples": self.resamples, "auc_resamples": self.auc_resamples, "seed": SEED,
            "accuracy": self.accuracy.as_dict(), "macro_f1": self.macro_f1.as_dict(),
            "roc_auc": self.roc_auc.as_dict() if self.roc_auc else None,
            "per_class": [{"class": name, "precision": p.as_dict(), "recall": r.as_dict()}
                          for name, p, r in zip(class_names, self.precision, self.recall)],
        }


def _bounds(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - LEVEL) / 2 * 100
    with np.errstate(invalid="ignore"):
        if np.isnan(samples).all(axis=0).any():  # some figure undefined in every resample
            low = np.full(samples.shape[1:], np.nan)
            high = low.copy()
            defined = ~np.isnan(samples).all(axis=0)
            if defined.any():
                low[defined], high[defined] = np.nanpercentile(samples[:, defined], [tail, 100 - tail], axis=0)
            return low, high
        return tuple(np.nanpercentile(samples, [tail, 100 - tail], axis=0))  # type: ignore[return-value]


def _interval(value: float, low: float, high: float) -> Interval:
    # a percentile interval of a skewed statistic can miss its point estimate by a hair; widen to it
    if math.isnan(low) or math.isnan(value):
        return Interval(value, low, high)
    return Interval(value, min(low, value), max(high, value))


def confusion_figures(cells: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall and macro F1 of confusion matrices ``cells`` (…, K*K counts,
    rows true), as scikit-learn reports them (zero_division=0, macro over every class)."""
    m = cells.reshape(*cells.shape[:-1], classes, classes).astype(np.float64)
    diagonal = np.diagonal(m, axis1=-2, axis2=-1)
    true_totals, predicted_totals = m.sum(axis=-1), m.sum(axis=-2)
    total = true_totals.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted_totals > 0, diagonal / predicted_totals, 0.0)
        recall = np.where(true_totals > 0, diagonal / true_totals, 0.0)
        both = true_totals + predicted_totals
        f1 = np.where(both > 0, 2 * diagonal / both, 0.0)
    return {"accuracy": diagonal.sum(axis=-1) / np.maximum(total, 1), "precision": precision, "recall": recall,
            "macro_f1": f1.mean(axis=-1)}


def _cell_shares(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    return np.bincount(y_true * classes + y_pred, minlength=classes * classes).astype(np.float64)


def bootstrap(y_true: np.ndarray, probabilities: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED,
              auc: bool = True, y_pred: np.ndarray | None = None) -> Intervals:
    """The 95 % intervals of accuracy, macro F1, per-class precision and recall and (with ``auc``,
    when every class is in the test set) ROC AUC, as ``Evaluation`` computes them. ``y_pred``: the
    predicted classes when they are not the argmax (a model's operating threshold)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n, classes = probabilities.shape
    y_pred = probabilities.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=np.int64)
    rng = np.random.default_rng(seed)
    counts = _cell_shares(y_true, y_pred, classes)
    point = confusion_figures(counts, classes)
    drawn = rng.multinomial(n, counts / max(n, 1), size=resamples) if n else np.zeros((resamples, counts.size))
    figures = confusion_figures(drawn, classes)
    out: dict[str, Any] = {}
    for key in ("accuracy", "macro_f1"):
        low, high = _bounds(figures[key][:, None])
        out[key] = _interval(float(point[key]), float(low[0]), float(high[0]))
    for key in ("precision", "recall"):
        low, high = _bounds(figures[key])
        out[key] = [_interval(float(v), float(lo), float(hi)) for v, lo, hi in zip(point[key], low, high)]
    auc_interval, auc_resamples = None, 0
    if auc and n and len(np.unique(y_true)) == classes and classes >= 2:
        auc_resamples = auc_resample_count(n, classes, resamples)
        auc_interval = _auc_interval(y_true, probabilities, auc_resamples, rng)
    return Intervals(out["accuracy"], out["macro_f1"], auc_interval, out["precision"], out["recall"], resamples,
                     auc_resamples)


def auc_resample_count(n: int, classes: int, resamples: int = RESAMPLES) -> int:
    columns = 1 if classes == 2 else classes
    return int(min(resamples, max(MIN_AUC_RESAMPLES, AUC_BUDGET // max(n * columns, 1))))


class RankedScores:
    """One class's scores sorted once, so the AUC of every resample is a cumulative sum and two
    look-ups: for each positive image, the weight of negatives scored lower, plus half of those
    tied with it (ties are common: many float32 probabilities are exactly 1.0)."""

    def __init__(self, scores: np.ndarray, positive: np.ndarray) -> None:
        positive = np.asarray(positive, dtype=bool)
        negatives = np.flatnonzero(~positive)
        self.negatives = negatives[np.argsort(scores[negatives], kind="stable")]
        self.positives = np.flatnonzero(positive)
        ordered = scores[self.negatives]
        found = scores[self.positives]
        # for each positive: how many negatives score strictly below, and at most, its score
        self.below = np.searchsorted(ordered, found, side="left")
        self.at_most = np.searchsorted(ordered, found, side="right")

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """(R, n) image counts → (R,) AUC; NaN where a resample lacks positives or negatives."""
        negative = weights[:, self.negatives].astype(np.float32)
        cumulative = np.zeros((len(weights), negative.shape[1] + 1), dtype=np.float32)
        np.cumsum(negative, axis=1, out=cumulative[:, 1:])
        positive = weights[:, self.positives].astype(np.float32)
        lower = 0.5 * (cumulative[:, self.below] + cumulative[:, self.at_most])
        pairs = positive.sum(axis=1, dtype=np.float64) * cumulative[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, (positive * lower).sum(axis=1, dtype=np.float64) / pairs, np.nan)


def auc_columns(y_true: np.ndarray, probabilities: np.ndarray) -> list[RankedScores]:
    """The columns ``Evaluation.roc_auc`` scores: for two classes the second's probability, else
    each class one-vs-rest (macro)."""
    if probabilities.shape[1] == 2:
        return [RankedScores(probabilities[:, 1], y_true == 1)]
    probs = probabilities / probabilities.sum(axis=1, keepdims=True)
    return [RankedScores(probs[:, k], y_true == k) for k in range(probabilities.shape[1])]


def macro_auc(columns: list[RankedScores], weights: np.ndarray) -> np.ndarray:
    return np.mean([column.auc(weights) for column in columns], axis=0)


def _auc_interval(y_true: np.ndarray, probabilities: np.ndarray, resamples: int,
                  rng: np.random.Generator) -> Interval:
    n = len(y_true)
    columns = auc_columns(y_true, probabilities)
    point = float(macro_auc(columns, np.ones((1, n), dtype=np.int32))[0])
    values = []
    for start in range(0, resamples, AUC_CHUNK):
        rows = min(AUC_CHUNK, resamples - start)
        picks = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        weights = np.bincount(picks.ravel(), minlength=rows * n).reshape(rows, n)
        values.append(macro_auc(columns, weights))
    low, high = _bounds(np.concatenate(values)[:, None])
    return _interval(point, float(low[0]), float(high[0]))


# ---------------------------------------------------------------- two runs, one test set


@dataclass(frozen=True)
class PairedDifference:
    """Run A's test accuracy minus run B's on the same images, with its paired-bootstrap interval."""

    difference: Interval
    images: int
    only_a: int  # images A gets right and B wrong
    only_b: int

    @property
    def within_noise(self) -> bool:
        return self.difference.low <= 0.0 <= self.difference.high

    def as_dict(self) -> dict[str, Any]:
        return {"difference": self.difference.as_dict(), "images": self.images, "only_a": self.only_a,
                "only_b": self.only_b, "within_noise": self.within_noise, "level": LEVEL}


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, *, resamples: int = RESAMPLES,
                      seed: int = SEED) -> PairedDifference:
    """Paired bootstrap of accuracy(A) − accuracy(B): the images are resampled together, so what
    both runs get right or wrong alike does not count as noise."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    n = len(a)
    cells = np.bincount(a.astype(int) * 2 + b.astype(int), minlength=4).astype(np.float64)  # (A, B): 00 01 10 11
    point = (cells[2] - cells[1]) / max(n, 1)
    drawn = np.random.default_rng(seed).multinomial(n, cells / max(n, 1), size=resamples)
    low, high = _bounds(((drawn[:, 2] - drawn[:, 1]) / max(n, 1))[:, None])
    return PairedDifference(_interval(float(point), float(low[0]), float(high[0])), n, int(cells[2]), int(cells[1]))


# ---------------------------------------------------------------- a search's combinations


def within_spread_of_best(means: list[float], stds: list[float], best: int = 0) -> list[bool]:
    """For each combination, whether its mean ± std across folds overlaps the best one's: the folds
    cannot tell them apart, so the best's ★ means little over it. NaN means: not scored."""
    if not means or best >= len(means) or math.isnan(means[best]):
        return [False] * len(means)
    floor = means[best] - (0.0 if math.isnan(stds[best]) else stds[best])
    return [not math.isnan(m) and (m + (0.0 if math.isnan(s) else s)) >= floor for m, s in zip(means, stds)]
