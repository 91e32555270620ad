"""Evaluate a trained model on a test set: accuracy, loss, confusion matrix, per-class report.

One forward pass over the test images yields everything (accuracy and loss
are computed from the same probabilities the confusion matrix uses), in
chunks so a stop request is honoured between chunks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.data.decode import DecodeError, decode, why_not_a_file
from cnn_tui.core.errors import TaskStopped
from cnn_tui.core.events import Emit, LoadProgress, ignore
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.models.temperature import scaled
from cnn_tui.core.models.threshold import Threshold, decide
from cnn_tui.core.models.views import View, chosen_tta, views_of

CHUNK = 2048  # images per forward pass between stop checks
EPSILON = 1e-7  # the clipping Keras applies inside cross-entropy


@dataclass(frozen=True)
class ReportRow:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    """Everything one pass over a test set tells about a model."""

    class_names: list[str]
    y_true: np.ndarray
    probabilities: np.ndarray
    files: list[str]
    seconds: float
    temperature: float = 1.0  # the model's (``probabilities`` have it applied)
    # test-time augmentation: ``probabilities`` average these views; the identity's are the plain ones
    views: list[str] = field(default_factory=list)
    plain_probabilities: np.ndarray | None = None
    threshold: Threshold | None = None  # the model's operating threshold: ``y_pred`` applies it

    @property
    def tta(self) -> bool:
        return self.plain_probabilities is not None

    def plain(self) -> Evaluation:
        """The same evaluation without test-time augmentation (itself when it used none)."""
        if self.plain_probabilities is None:
            return self
        return Evaluation(self.class_names, self.y_true, self.plain_probabilities, self.files, self.seconds,
                          temperature=self.temperature, threshold=self.threshold)

    @property
    def y_pred(self) -> np.ndarray:
        return decide(self.probabilities, self.class_names, self.threshold)

    @property
    def samples(self) -> int:
        return len(self.y_true)

    @property
    def accuracy(self) -> float:
        return float((self.y_pred == self.y_true).mean())

    @property
    def loss(self) -> float:
        picked = self.probabilities[np.arange(self.samples), self.y_true]
        return float(-np.log(np.clip(picked, EPSILON, 1.0)).mean())

    def confusion(self) -> np.ndarray:
        """Counts: rows are the true class, columns the predicted class."""
        from sklearn.metrics import confusion_matrix  # noqa: PLC0415 — scikit-learn loads lazily (about a second): not at start-up

        return confusion_matrix(self.y_true, self.y_pred, labels=range(len(self.class_names)))

    def report(self) -> list[ReportRow]:
        """Precision, recall, F1 and support per class, then micro, macro and weighted averages."""
        from sklearn.metrics import precision_recall_fscore_support  # noqa: PLC0415 — scikit-learn loads lazily (about a second): not at start-up

        labels = list(range(len(self.class_names)))
        p, r, f, s = precision_recall_fscore_support(self.y_true, self.y_pred, labels=labels, zero_division=0)
        rows = [ReportRow(name, float(p[i]), float(r[i]), float(f[i]), int(s[i])) for i, name in enumerate(self.class_names)]
        for average in ("micro", "macro", "weighted"):
            ap, ar, af, _ = precision_recall_fscore_support(
                self.y_true, self.y_pred, labels=labels, average=average, zero_division=0
            )
            rows.append(ReportRow(f"{average} avg", float(ap), float(ar), float(af), int(s.sum())))
        return rows

    def roc_auc(self) -> float | None:
        """ROC AUC: for two classes, of the second class's probability; for more, one-vs-rest macro.
        None when some class is missing from the test set (AUC is undefined then)."""
        from sklearn.metrics import roc_auc_score  # noqa: PLC0415 — scikit-learn loads lazily (about a second): not at start-up

        present = np.unique(self.y_true)
        if len(present) < len(self.class_names) or len(present) < 2:
            return None
        if len(self.class_names) == 2:
            return float(roc_auc_score(self.y_true, self.probabilities[:, 1]))
        probs = self.probabilities / self.probabilities.sum(axis=1, keepdims=True)
        return float(roc_auc_score(self.y_true, probs, multi_class="ovr", average="macro", labels=range(len(self.class_names))))

    def misclassified(self, limit: int = 20) -> list[tuple[str, str, str, float]]:
        """(file, true class, predicted class, its probability), most confident mistakes first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        confidence = self.probabilities[wrong, self.y_pred[wrong]]
        order = wrong[np.argsort(-confidence)][:limit]
        names = self.class_names
        return [
            (self.files[i], names[self.y_true[i]], names[self.y_pred[i]], float(self.probabilities[i, self.y_pred[i]]))
            for i in order
        ]

    def summary(self) -> dict[str, Any]:
        """The figures of the probabilities used; with test-time augmentation also its views and the
        plain figures beside them."""
        out: dict[str, Any] = {"accuracy": self.accuracy, "loss": self.loss, "samples": self.samples,
                               "roc_auc": self.roc_auc(), "tta": self.tta,
                               "threshold": self.threshold.as_dict() if self.threshold else None}
        if self.tta:
            plain = self.plain()
            out["tta_views"] = list(self.views)
            out["plain"] = {"accuracy": plain.accuracy, "loss": plain.loss, "roc_auc": plain.roc_auc()}
        return out


def predict_probabilities(
    net: NetModel, x: np.ndarray, *, emit: Emit = ignore, stop: threading.Event | None = None, what: str = "test set",
    views: Sequence[View] | None = None,
) -> np.ndarray:
    """Class probabilities for ``x``, computed in chunks so a stop takes effect quickly.
    ``views``: test-time augmentation, the mean of the probabilities of these views of each image."""
    return predict_views(net, x, views or (), emit=emit, stop=stop, what=what).mean(axis=0)


def predict_views(
    net: NetModel, x: np.ndarray, views: Sequence[View], *, emit: Emit = ignore, stop: threading.Event | None = None,
    what: str = "test set",
) -> np.ndarray:
    """The probabilities of each view of ``x``, ``(views, images, classes)``; no views: one, ``x`` itself."""
    views = tuple(views) or (None,)
    out = np.empty((len(views), len(x), net.num_classes), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(x), CHUNK):
        if stop is not None and stop.is_set():
            raise TaskStopped(f"evaluation stopped after {start} of {len(x)} images")
        chunk = np.asarray(x[start : start + CHUNK])
        for i, view in enumerate(views):
            seen = chunk if view is None else view.apply(chunk)
            out[i, start : start + len(chunk)] = net.keras_model.predict(seen, batch_size=256, verbose=0)
        done = start + len(chunk)
        emit(LoadProgress(what, done, len(x), done / max(time.perf_counter() - started, 1e-9)))
    return scaled(out, getattr(net, "temperature", 1.0))  # a calibrated model's temperature (1.0: unchanged)


def evaluate(net: NetModel, test_set: ImageSet, *, emit: Emit = ignore, stop: threading.Event | None = None,
             tta: bool | None = None) -> Evaluation:
    """``tta``: average test-time augmentation's views (``models.views``); None: as the model file
    records. With it, the plain probabilities (the identity view's) are kept beside the averaged."""
    net.check_fits(
        num_classes=test_set.num_classes, image_size=test_set.image_size, class_names=test_set.class_names, what="test set"
    )
    started = time.perf_counter()
    if not chosen_tta(net, tta):
        probabilities = predict_probabilities(net, test_set.x, emit=emit, stop=stop)
        return Evaluation(test_set.class_names, test_set.y, probabilities, test_set.files, time.perf_counter() - started,
                          temperature=getattr(net, "temperature", 1.0), threshold=getattr(net, "threshold", None))
    views = views_of(net)
    each = predict_views(net, test_set.x, views, emit=emit, stop=stop)
    return Evaluation(test_set.class_names, test_set.y, each.mean(axis=0), test_set.files, time.perf_counter() - started,
                      views=[v.name for v in views], plain_probabilities=each[0], temperature=getattr(net, "temperature", 1.0),
                      threshold=getattr(net, "threshold", None))


@dataclass(frozen=True)
class Classification:
    path: str
    top: list[tuple[str, float]]  # best first
    error: str | None = None
    predicted: str | None = None  # the class decided: the top one, or the model's threshold applied


def classify_files(net: NetModel, paths: list[str | Path], top_k: int = 3, *, tta: bool | None = None) -> list[Classification]:
    """The top classes for single image files; unreadable files get an error, not an exception.
    ``tta``: average test-time augmentation's views; None: as the model file records."""
    results: list[Classification | None] = [None] * len(paths)
    arrays, where = [], []
    for i, path in enumerate(paths):
        if problem := why_not_a_file(path):
            results[i] = Classification(str(path), [], problem)
            continue
        try:
            pixels, _ = decode(str(path), net.image_size, net.channels)
        except DecodeError as exc:
            results[i] = Classification(str(path), [], str(exc))
            continue
        arrays.append(pixels)
        where.append(i)
    if arrays:
        x = np.stack(arrays).astype(np.float32) / 255.0
        probabilities = predict_probabilities(net, x, what="images", views=views_of(net) if chosen_tta(net, tta) else None)
        k = min(top_k, net.num_classes)
        decided = decide(probabilities, net.class_names, getattr(net, "threshold", None))
        for row, i, d in zip(probabilities, where, decided):
            best = np.argsort(-row)[:k]
            results[i] = Classification(str(paths[i]), [(net.class_names[j], float(row[j])) for j in best],
                                        predicted=net.class_names[int(d)])
    return [r for r in results if r is not None]
