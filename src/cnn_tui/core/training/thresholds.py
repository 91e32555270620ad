"""Choosing an operating threshold for one class on held-out images (the validation share, never test).

One-vs-rest: the class is predicted exactly when its probability ≥ t (``models.threshold.decide``),
so its precision and recall at every t are scikit-learn's ``precision_recall_curve`` of its
probability. For a target recall: the highest t that still reaches it (the best precision there);
for a target precision: the lowest t that reaches it (the best recall there). A target no t reaches
is a ``UserError`` naming the best value reachable.
"""

from __future__ import annotations

import numpy as np

from cnn_tui.core.errors import UserError
from cnn_tui.core.models.threshold import METRICS, Threshold


def check_target(positive: str, class_names: list[str], metric: str, target: float) -> int:
    """The positive class's index; a one-line error for a class the model lacks or a target outside (0, 1]."""
    if positive not in class_names:
        raise UserError(f"--positive {positive}: no such class (the classes are {', '.join(class_names)})")
    if metric not in METRICS:
        raise UserError(f"a threshold's target is a recall or a precision, not {metric}")
    if not 0 < target <= 1:
        raise UserError(f"--target-{metric} {target:g}: a target must lie in (0, 1]")
    return class_names.index(positive)


def choose_threshold(probabilities: np.ndarray, y_true: np.ndarray, class_names: list[str], positive: str,
                     metric: str, target: float) -> Threshold:
    """The threshold of ``positive`` meeting ``metric`` ≥ ``target`` on these images (see the module)."""
    from sklearn.metrics import precision_recall_curve  # noqa: PLC0415 — scikit-learn loads lazily (about a second)

    k = check_target(positive, class_names, metric, target)
    truth = np.asarray(y_true) == k
    if not truth.any():
        raise UserError(f"the validation share has no image of {positive}: no threshold can be chosen for it")
    precision, recall, thresholds = precision_recall_curve(truth, np.asarray(probabilities)[:, k])
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold (nothing predicted)
    values = recall if metric == "recall" else precision
    met = np.flatnonzero(values >= target - 1e-12)
    if not len(met):
        raise UserError(f"target {metric} {target:g} for {positive} cannot be met on the validation share: "
                        f"the best reachable is {values.max():.3f}")
    # thresholds ascend: recall falls as t rises, so the last t meeting a recall is the highest
    i = met[-1] if metric == "recall" else met[0]
    return Threshold(positive, float(thresholds[i]), metric, float(target), float(values[i]))
