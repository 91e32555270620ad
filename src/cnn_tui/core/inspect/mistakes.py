"""Error analysis from an evaluation's predictions: the images of a confusion-matrix cell, the
most confidently wrong images ("top losses") and the class pairs confused most often.

Everything works from an ``Evaluation`` (its true classes, probabilities and files), so it
runs the same on a fresh evaluation and on one read back from a run's ``predictions.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPSILON = 1e-7  # the clipping Keras applies inside cross-entropy: the same loss the evaluation reports
TOP_K = 3


@dataclass(frozen=True)
class Example:
    """One test image as the model saw it."""

    index: int  # its row in the evaluation
    file: str
    true: str
    predicted: str
    probability: float  # of the predicted class
    true_probability: float
    loss: float  # cross-entropy of the true class
    top: tuple[tuple[str, float], ...]  # the best classes, best first

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


@dataclass(frozen=True)
class Confusion:
    """A pair of classes the model mixes up: ``count`` images of ``true`` predicted as ``predicted``."""

    true: str
    predicted: str
    count: int
    share: float  # of the true class's test images


def predicted_classes(evaluation: Any) -> np.ndarray:
    """The class predicted for each image: an ``Evaluation``'s (its model's threshold applied), else the argmax."""
    y_pred = getattr(evaluation, "y_pred", None)
    return evaluation.probabilities.argmax(axis=1) if y_pred is None else np.asarray(y_pred)


def losses(evaluation: Any) -> np.ndarray:
    """Each image's cross-entropy loss (of its true class)."""
    picked = evaluation.probabilities[np.arange(len(evaluation.y_true)), evaluation.y_true]
    return -np.log(np.clip(picked, EPSILON, 1.0))


def example(evaluation: Any, index: int, top_k: int = TOP_K) -> Example:
    row = evaluation.probabilities[index]
    names = evaluation.class_names
    true, predicted = int(evaluation.y_true[index]), int(predicted_classes(evaluation)[index])
    best = np.argsort(-row, kind="stable")[: min(top_k, len(names))]
    loss = float(-np.log(np.clip(row[true], EPSILON, 1.0)))
    return Example(int(index), str(evaluation.files[index]), names[true], names[predicted], float(row[predicted]),
                   float(row[true]), loss, tuple((names[j], float(row[j])) for j in best))


def cell(evaluation: Any, true: int, predicted: int) -> list[Example]:
    """The images of one confusion-matrix cell (true class ``true`` predicted as ``predicted``), the most
    confident first: exactly the images the matrix counts there."""
    y_pred = predicted_classes(evaluation)  # as the matrix counts them
    rows = np.flatnonzero((evaluation.y_true == true) & (y_pred == predicted))
    confidence = evaluation.probabilities[rows, predicted]
    return [example(evaluation, int(i)) for i in rows[np.argsort(-confidence, kind="stable")]]


def top_losses(evaluation: Any, limit: int | None = None, *, wrong_only: bool = True) -> list[Example]:
    """The images with the highest loss first; by default only the misclassified ones (the most
    confidently wrong at the top)."""
    loss = losses(evaluation)
    rows = np.arange(len(loss))
    if wrong_only:
        rows = np.flatnonzero(predicted_classes(evaluation) != evaluation.y_true)
    order = rows[np.argsort(-loss[rows], kind="stable")]
    if limit is not None:
        order = order[:limit]
    return [example(evaluation, int(i)) for i in order]


def most_confused(evaluation: Any, limit: int | None = None, min_count: int = 1) -> list[Confusion]:
    """Off-diagonal cells of the confusion matrix, the most mistakes first (ties: by class order)."""
    n = len(evaluation.class_names)
    y_pred = predicted_classes(evaluation)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (evaluation.y_true, y_pred), 1)
    totals = matrix.sum(axis=1)
    pairs = [(int(matrix[i, j]), i, j) for i in range(n) for j in range(n) if i != j and matrix[i, j] >= min_count]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    names = evaluation.class_names
    found = [Confusion(names[i], names[j], count, count / max(int(totals[i]), 1)) for count, i, j in pairs]
    return found if limit is None else found[:limit]


MISCLASSIFIED_COLUMNS = ["file", "true", "predicted", "probability", "loss",
                         *(f"{what}_{k}" for k in range(1, TOP_K + 1) for what in ("top", "p"))]


def misclassified_rows(evaluation: Any, limit: int | None = 100) -> list[dict[str, Any]]:
    """Rows of ``misclassified.csv``: the most confident mistakes, with their loss and the top classes."""
    rows = []
    for e in top_losses(evaluation, limit):
        row: dict[str, Any] = {"file": e.file, "true": e.true, "predicted": e.predicted,
                               "probability": round(e.probability, 6), "loss": round(e.loss, 6)}
        for k, (name, p) in enumerate(e.top, start=1):
            row[f"top_{k}"], row[f"p_{k}"] = name, round(p, 6)
        rows.append(row)
    return rows
