"""What a run produced, read back from its folder: the history, the evaluation, the search's
folds, the model. The Runs view opens finished runs with these (a run written before
``events.jsonl`` existed still opens from its other files)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from cnn_tui.core.events import ROW_FIELDS  # a row's own fields, beside the params
from cnn_tui.core.runs.folder import read_run


def load_history(folder: Path) -> dict[str, list[float]]:
    """The history a run wrote (whole epochs only); empty when there is none yet. Plain csv:
    the Runs view reads it in a listing, before anything has imported numpy."""
    try:
        with open(folder / "history.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return {}
    history: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key and key != "epoch" and value not in ("", None):
                try:
                    history.setdefault(key, []).append(float(value))
                except ValueError:
                    return history  # a damaged file: the epochs read so far
    return history


def load_evaluation(folder: Path) -> Any | None:
    """The run's ``Evaluation`` from ``predictions.npz``, or None when it has none."""
    import numpy as np

    from cnn_tui.core.training.evaluation import Evaluation

    path = folder / "predictions.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return Evaluation(
                class_names=[str(n) for n in saved["class_names"]], y_true=saved["y_true"].astype(int),
                probabilities=saved["probabilities"], files=[str(f) for f in saved["files"]],
                seconds=float(saved["seconds"]),
            )
    except (OSError, ValueError, KeyError):
        return None


def load_fold_rows(folder: Path) -> list[dict[str, Any]]:
    """Every fit of the run's search: from its events (typed), else from tuning_results.csv."""
    from cnn_tui.core.events import FoldEnd
    from cnn_tui.core.runs.events_file import read_events

    rows = [dict(e.row) for e in read_events(folder) if isinstance(e, FoldEnd)]
    if rows:
        seen: dict[tuple, dict[str, Any]] = {}
        for row in rows:  # a resumed search reports its kept fits again: the last report counts
            key = (row.get("split"), row.get("rung"), *(str(row.get(k)) for k in sorted(row) if k not in ROW_FIELDS))
            seen[key] = row
        return [_nan_for_none(r) for r in seen.values()]
    try:
        with open(folder / "tuning_results.csv", encoding="utf-8", newline="") as handle:
            return [_typed(row) for row in csv.DictReader(handle)]
    except OSError:
        return []




def _nan_for_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (math.nan if v is None and k in ("accuracy", "loss") else v) for k, v in row.items()}


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in row.items():
        if key in ("status", "reason", "split"):
            out[key] = text
            continue
        try:
            number = float(text)
            out[key] = int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
        except (TypeError, ValueError):
            out[key] = math.nan if key in ("accuracy", "loss") else text
    return out


def load_tuning(folder: Path) -> Any | None:
    """The run's search as a ``TuningResult`` (plan rebuilt from run.json and the rows)."""
    from cnn_tui.core.tuning.search import TuningPlan, TuningResult

    record = read_run(folder) or {}
    rows = load_fold_rows(folder)
    if not rows:
        return None
    details = record.get("details") or {}
    columns = [k for k in rows[0] if k not in ROW_FIELDS]
    candidates: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        candidates.setdefault(tuple(row.get(c) for c in columns), {c: row.get(c) for c in columns})
    plan = TuningPlan(str(details.get("strategy") or "grid"), list(candidates.values()), int(details.get("cv") or 3),
                      int(details.get("samples") or 0), int(details.get("fits_planned") or len(rows)), 0)
    status = record.get("status") if record.get("status") in ("finished", "stopped", "failed") else "stopped"
    return TuningResult(status, str(record.get("message") or ""), plan, rows, float(record.get("seconds") or 0.0))
