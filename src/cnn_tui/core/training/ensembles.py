"""An ensemble against its members on one test set: each one's accuracy and macro F1 with their 95 %
bootstrap intervals, and whether the ensemble is within noise of its best member (a paired bootstrap
on the same images).

The members are the ensemble's own nested models (``member_1``…), each with the temperature its
record names, so nothing is loaded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.training import intervals
from cnn_tui.core.training.evaluation import evaluate


@dataclass(frozen=True)
class Scored:
    name: str
    accuracy: intervals.Interval
    macro_f1: intervals.Interval
    correct: np.ndarray  # one bool an image: the paired comparison's input

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name, "accuracy": self.accuracy.as_dict(), "macro_f1": self.macro_f1.as_dict()}


@dataclass(frozen=True)
class EnsembleComparison:
    members: list[Scored]
    ensemble: Scored
    against_best: intervals.PairedDifference  # ensemble minus its best member

    @property
    def best_member(self) -> Scored:
        return max(self.members, key=lambda m: m.accuracy.value)

    def as_dict(self) -> dict[str, Any]:
        return {"members": [m.as_dict() for m in self.members], "ensemble": self.ensemble.as_dict(),
                "best_member": self.best_member.name, "against_best_member": self.against_best.as_dict()}


def member_nets(ensemble: NetModel) -> list[NetModel]:
    """The ensemble's members as models of their own (their temperatures from its record)."""
    record = ensemble.members or []
    nets = []
    for i, entry in enumerate(record, start=1):
        temperature = entry.get("temperature", 1.0)
        nets.append(NetModel(ensemble.keras_model.get_layer(f"member_{i}"), list(ensemble.class_names),
                             ensemble.image_size, ensemble.channels, ensemble.config,
                             temperature=float(temperature) if isinstance(temperature, (int, float)) else 1.0))
    return nets


def _scored(name: str, net: NetModel, test_set: ImageSet, tta: bool | None) -> Scored:
    result = evaluate(net, test_set, tta=tta)
    found = intervals.bootstrap(result.y_true, result.probabilities, auc=False)
    return Scored(name, found.accuracy, found.macro_f1, result.y_pred == result.y_true)


def compare(ensemble: NetModel, test_set: ImageSet, *, tta: bool | None = None) -> EnsembleComparison:
    """Each member and the ensemble evaluated on ``test_set``."""
    names = [str(entry.get("model", f"member {i}")) for i, entry in enumerate(ensemble.members or [], start=1)]
    members = [_scored(name, net, test_set, tta) for name, net in zip(names, member_nets(ensemble))]
    whole = _scored("ensemble", ensemble, test_set, tta)
    best = max(members, key=lambda m: m.accuracy.value)
    return EnsembleComparison(members, whole, intervals.paired_difference(whole.correct, best.correct))
