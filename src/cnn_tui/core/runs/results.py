"""What a run produced, read back from its folder: how it ended (``read_ending``: the one reader
of that, for the TUI, the CLI and the runs list), the history, the evaluation, the search's folds.
The Runs view opens finished runs with these (a run written before ``events.jsonl`` existed still
opens from its other files)."""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.events import ROW_FIELDS, FoldEnd, TaskFinished  # ROW_FIELDS: a row's own fields, beside the params
from cnn_tui.core.runs.events_file import read_events
from cnn_tui.core.runs.folder import INTERRUPTED_MESSAGE, effective_status, read_run, task_label
from cnn_tui.core.runs.lifecycle import exit_code_of

FINAL_FIGURES = ("accuracy", "val_accuracy", "loss", "val_loss")


@dataclass(frozen=True)
class RunEnding:
    """How a run ended (or, while it runs, how it stands), read back from its folder."""

    run_dir: Path
    run_id: str
    task: str  # "?" when run.json does not say
    status: str  # running | finished | stopped | failed | interrupted (a running run whose process is gone)
    message: str
    exit_code: int | None  # its process's; for a killed one, what its status means; None while it runs
    seconds: float | None  # so far, while it runs
    metrics: dict[str, float]  # the final or best figures; without them (running, killed) its last whole epoch
    record: dict[str, Any]  # run.json as read; empty when the folder has no readable one

    @property
    def label(self) -> str:
        return task_label(self.task)

    @property
    def details(self) -> dict[str, Any]:
        details = self.record.get("details")
        return details if isinstance(details, dict) else {}  # a damaged run.json: no details, not a crash


def whole(value: Any, default: int) -> int:
    """A count read from a run record: ``value`` when it is a whole, finite, non-negative number,
    else ``default`` (run.json is data, not truth: ``"x"``, ``[1]`` or ``1e400`` must not break a view)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return default
    return int(value) if value else default


def read_ending(run_dir: Path, *, record: dict[str, Any] | None = None,
                finished: TaskFinished | None = None) -> RunEnding:
    """How the run in ``run_dir`` ended. ``record``: its run.json when the caller has read it already;
    ``finished``: its ``TaskFinished`` event when the caller followed its events (the event comes
    before run.json says the run ended)."""
    record = record if record is not None else read_run(run_dir) or {}
    status = effective_status(record, run_dir)
    message = str(record.get("message") or "")
    exit_code = record.get("exit_code")
    if finished is not None and status == "running":
        status, message, exit_code = finished.status, finished.message, finished.details.get("exit_code")
    if status == "interrupted" and (record.get("status") != "interrupted" or not message):
        message = INTERRUPTED_MESSAGE  # what run.json says was written while the process lived
    if status == "running":
        exit_code = None
    elif status == "interrupted" or not isinstance(exit_code, int):  # a killed process wrote no exit code
        exit_code = exit_code_of(status)
    return RunEnding(run_dir, str(record.get("run_id") or run_dir.name), str(record.get("task") or "?"), status,
                     message, exit_code, _duration(record, status), _metrics(record) or _last_epoch(run_dir), record)


def _metrics(record: dict[str, Any]) -> dict[str, float]:
    details = record.get("details") or {}
    found: dict[str, float] = {}
    for key, value in (details.get("final") or {}).items():
        if key in FINAL_FIGURES and isinstance(value, (int, float)):
            found[key] = float(value)
    if isinstance(details.get("accuracy"), (int, float)):  # evaluation (alone or after training)
        found["test_accuracy"] = float(details["accuracy"])
    if isinstance(details.get("best_accuracy"), (int, float)):
        found["best_cv_accuracy"] = float(details["best_accuracy"])
    return found


def _last_epoch(folder: Path) -> dict[str, float]:
    return {k: v[-1] for k, v in load_history(folder).items() if v and k in FINAL_FIGURES}


def _duration(record: dict[str, Any], status: str) -> float | None:
    if record.get("seconds") is not None:
        return float(record["seconds"])
    if status == "running" and record.get("started"):
        try:
            return max(0.0, time.time() - datetime.fromisoformat(record["started"]).timestamp())
        except ValueError:
            return None
    return None


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


def saved_threshold(saved: Any, class_names: list[str], path: Path) -> Any:
    """The operating threshold the evaluation applied (None: the argmax, and every older file)."""
    from cnn_tui.core.models.threshold import recorded_threshold  # noqa: PLC0415 — numpy at import, as below

    if "threshold" not in saved.files:
        return None
    return recorded_threshold({"threshold": json.loads(str(saved["threshold"]))}, class_names, path)


def load_evaluation(folder: Path) -> Any | None:
    """The run's ``Evaluation`` from ``predictions.npz``, or None when it has none."""
    import numpy as np  # noqa: PLC0415 — the Runs view reads this module in a listing, before anything imports numpy

    from cnn_tui.core.training.evaluation import Evaluation  # noqa: PLC0415 — numpy at import, as above

    path = folder / "predictions.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return Evaluation(
                class_names=[str(n) for n in saved["class_names"]], y_true=saved["y_true"].astype(int),
                probabilities=saved["probabilities"], files=[str(f) for f in saved["files"]],
                seconds=float(saved["seconds"]),
                temperature=float(saved["temperature"]) if "temperature" in saved.files else 1.0,
                threshold=saved_threshold(saved, [str(n) for n in saved["class_names"]], path),
            )
    except (OSError, ValueError, KeyError, UserError):
        return None


def load_fold_rows(folder: Path) -> list[dict[str, Any]]:
    """Every fit of the run's search: from its events (typed), else from tuning_results.csv."""
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
    from cnn_tui.core.tuning.search import TuningPlan, TuningResult  # noqa: PLC0415 — numpy at import (see above)

    record = read_run(folder) or {}
    rows = load_fold_rows(folder)
    if not rows:
        return None
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    columns = [k for k in rows[0] if k not in ROW_FIELDS]
    candidates: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        candidates.setdefault(tuple(row.get(c) for c in columns), {c: row.get(c) for c in columns})
    plan = TuningPlan(str(details.get("strategy") or "grid"), list(candidates.values()), whole(details.get("cv"), 3),
                      whole(details.get("samples"), 0), whole(details.get("fits_planned"), len(rows)), 0)
    status = record.get("status") if record.get("status") in ("finished", "stopped", "failed") else "stopped"
    importance = details.get("importance")  # which fields mattered, when the search said
    importance = {str(k): float(v) for k, v in importance.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                  } if isinstance(importance, dict) else {}
    seconds = record.get("seconds")
    seconds = float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else 0.0
    return TuningResult(status, str(record.get("message") or ""), plan, rows, seconds, importance=importance)
