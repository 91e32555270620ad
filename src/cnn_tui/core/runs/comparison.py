"""Whether two runs' test accuracies are within noise of each other: a paired bootstrap on the
test images both evaluations scored (``predictions.npz`` holds each image's probabilities and
file), or "cannot tell" when they did not score the same images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_tui.core.runs.results import load_evaluation

if TYPE_CHECKING:
    from cnn_tui.core.training.intervals import PairedDifference


@dataclass(frozen=True)
class NoiseVerdict:
    """Run A against run B: the paired difference, or why there is none (``reason``)."""

    paired: PairedDifference | None
    reason: str = ""

    @property
    def within_noise(self) -> bool | None:
        return None if self.paired is None else self.paired.within_noise

    def text(self) -> str:
        """``within noise (+0.3 points, 95 %: −0.8 to +1.4)`` or why it cannot tell."""
        if self.paired is None:
            return f"cannot tell ({self.reason})"
        d = self.paired.difference
        span = f"{d.value * 100:+.1f} points, 95 %: {d.low * 100:+.1f} to {d.high * 100:+.1f}"
        return f"within noise ({span})" if self.paired.within_noise else f"beyond noise ({span})"

    def as_dict(self) -> dict[str, Any]:
        return {"within_noise": self.within_noise, "reason": self.reason or None,
                "paired": self.paired.as_dict() if self.paired else None}


def compare_test_accuracy(folder_a: Path, folder_b: Path, *, evaluations: dict[Path, Any] | None = None) -> NoiseVerdict:
    """A's test accuracy minus B's, paired on the images both scored. ``evaluations``: a cache of
    loaded evaluations by folder (comparing one run with several)."""
    import numpy as np  # noqa: PLC0415 — the compare screen reads this module before anything imports numpy

    from cnn_tui.core.training.intervals import paired_difference  # noqa: PLC0415 — numpy at import, as above

    cache = evaluations if evaluations is not None else {}
    loaded = []
    for folder in (Path(folder_a), Path(folder_b)):
        if folder not in cache:
            cache[folder] = load_evaluation(folder)
        loaded.append(cache[folder])
    a, b = loaded
    if a is None or b is None:
        return NoiseVerdict(None, "a run has no test predictions (predictions.npz)")
    if list(a.class_names) != list(b.class_names):
        return NoiseVerdict(None, "their classes differ")
    if len(set(a.files)) != len(a.files) or sorted(a.files) != sorted(b.files):
        return NoiseVerdict(None, "they were not tested on the same images")
    where = {name: i for i, name in enumerate(b.files)}
    order = np.array([where[name] for name in a.files])
    if not np.array_equal(a.y_true, b.y_true[order]):
        return NoiseVerdict(None, "their test images' classes differ")
    return NoiseVerdict(paired_difference(a.y_pred == a.y_true, (b.y_pred == b.y_true)[order]))
