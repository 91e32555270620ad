"""What ``evaluate``, ``predict`` and ``pipeline`` print about how far their figures can be trusted:
the 95 % intervals, top-k accuracy, the calibration (ECE, before and after the model's temperature)
and a reliability table, drawn in text."""

from __future__ import annotations

from typing import Any

from cnn_tui.cli.console import CliConsole, make_table
from cnn_tui.core.training.uncertainty import Trust, reliability_lines, with_interval


def print_trust(console: CliConsole, evaluation: Any, trust: Trust | None, *, per_class: bool) -> dict[str, Any]:
    """Print the tables; the same figures for ``--json``."""
    if trust is None:
        return {}
    iv = trust.intervals
    rows: list[tuple[str, str]] = [
        ("accuracy", with_interval(evaluation.accuracy, iv.accuracy)),
        ("macro F1", with_interval(iv.macro_f1.value, iv.macro_f1, percent=False)),
    ]
    if iv.roc_auc is not None:
        rows.append(("ROC AUC", with_interval(iv.roc_auc.value, iv.roc_auc, percent=False)
                     + (f" · {iv.auc_resamples} resamples" if iv.auc_resamples < iv.resamples else "")))
    rows += [(f"top-{k} accuracy", with_interval(v, None)) for k, v in trust.top_k.items()]
    if trust.ece_before is not None:
        rows.append(("ECE (15 bins)", f"{trust.ece:.3f} with temperature {trust.temperature:.3f} "
                                      f"(without: {trust.ece_before:.3f})"))
    else:
        rows.append(("ECE (15 bins)", f"{trust.ece:.3f} (not calibrated: train with --calibrate)"))
    console.table(make_table(f"How sure: 95 % intervals (bootstrap, {iv.resamples} resamples of the test images)",
                             ["figure", "value (95 % interval)"], rows, right=[1]))
    if per_class:
        console.table(make_table("Per-class precision and recall, 95 % intervals", ["class", "precision", "recall"],
                                 [(name, with_interval(p.value, p), with_interval(r.value, r))
                                  for name, p, r in zip(evaluation.class_names, iv.precision, iv.recall)],
                                 right=[1, 2]))
    lines = reliability_lines(trust.reliability)
    if lines:
        console.table(make_table("Reliability (top probability bins): █ accuracy, │ confidence",
                                 ["confidence", "images", "mean conf.", "accuracy", "0 ─────────────── 1"],
                                 lines, right=[1, 2, 3]))
    return trust.as_dict(evaluation.class_names)
