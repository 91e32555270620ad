"""Finding runs: every run folder under the results folders in use, summarised for a list,
and a run named by its id, a unique prefix of one, or its folder."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.runs.folder import RUN_FILE, effective_status, read_run


@dataclass
class RunSummary:
    """One line of the runs list: what ran, on what, how it went."""

    run_id: str
    run_dir: str
    task: str
    status: str
    started: str
    seconds: float | None
    message: str = ""
    data: str = ""  # the training (or, to evaluate, test) folder: its last two parts
    params: dict[str, Any] = field(default_factory=dict)  # hyper params that differ from the defaults
    metrics: dict[str, float] = field(default_factory=dict)  # final or best figures
    pid: int | None = None
    exit_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def differing_params(hyper: dict[str, Any]) -> dict[str, Any]:
    """The hyper fields whose value is not the seed's default. A default list's first value is
    what training uses, so a single value equal to it is no difference."""
    from cnn_tui.core.params.fields import HYPER_FIELDS

    defaults = {f.name: f.default for f in HYPER_FIELDS}

    def same(value: Any, default: Any) -> bool:
        return value == default or (isinstance(default, list) and value in (default[0], [default[0]]))

    return {k: v for k, v in hyper.items() if k in defaults and not same(v, defaults[k])}


def _metrics(record: dict[str, Any]) -> dict[str, float]:
    details = record.get("details") or {}
    found: dict[str, float] = {}
    for key, value in (details.get("final") or {}).items():
        if key in ("accuracy", "val_accuracy", "loss", "val_loss") and isinstance(value, (int, float)):
            found[key] = float(value)
    if isinstance(details.get("accuracy"), (int, float)):  # evaluation (alone or after training)
        found["test_accuracy"] = float(details["accuracy"])
    if isinstance(details.get("best_accuracy"), (int, float)):
        found["best_cv_accuracy"] = float(details["best_accuracy"])
    return found


def _duration(record: dict[str, Any], status: str) -> float | None:
    if record.get("seconds") is not None:
        return float(record["seconds"])
    if status == "running" and record.get("started"):
        try:
            return max(0.0, time.time() - datetime.fromisoformat(record["started"]).timestamp())
        except ValueError:
            return None
    return None


def summarize(folder: Path, record: dict[str, Any] | None = None) -> RunSummary | None:
    record = record if record is not None else read_run(folder)
    if record is None:
        return None
    status = effective_status(record)
    data = _read_json(folder / "data_params.json")
    hyper = _read_json(folder / "hyper_params.json")
    task = str(record.get("task") or "?")
    source = (data.get("test_dir") if task in ("evaluate", "predict") else data.get("train_dir")) or ""
    metrics = _metrics(record)
    if not metrics:  # a running (or killed) run: its last whole epoch
        from cnn_tui.core.runs.results import load_history

        last = {k: v[-1] for k, v in load_history(folder).items() if v and k in ("accuracy", "val_accuracy", "loss",
                                                                                    "val_loss")}
        metrics = last
    return RunSummary(
        run_id=str(record.get("run_id") or folder.name), run_dir=str(folder), task=task,
        status=status, started=str(record.get("started") or ""), seconds=_duration(record, status),
        message=str(record.get("message") or "") if status != "interrupted" or record.get("status") == "interrupted"
        else "the process ended before the run finished (killed, or the machine stopped)",
        data="/".join(Path(source).parts[-2:]) if source else "", params=differing_params(hyper), metrics=metrics,
        pid=record.get("pid"), exit_code=record.get("exit_code"),
    )


def run_folders(parents: Iterable[Path]) -> list[Path]:
    found: dict[str, Path] = {}
    for parent in parents:
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and os.path.exists(os.path.join(entry.path, RUN_FILE)):
                found.setdefault(os.path.realpath(entry.path), Path(entry.path))
    return list(found.values())


def list_runs(parents: Iterable[Path]) -> list[RunSummary]:
    """Every run under ``parents``, newest first."""
    summaries = [s for folder in run_folders(parents) if (s := summarize(folder)) is not None]
    summaries.sort(key=lambda s: (s.started, s.run_id), reverse=True)
    return summaries


def find_run(ref: str, parents: Iterable[Path]) -> Path:
    """The run folder ``ref`` names: a folder, a run id, or a unique prefix of one."""
    parents = list(parents)
    direct = Path(ref).expanduser()
    if (direct / RUN_FILE).is_file():
        return direct
    folders = run_folders(parents)
    exact = [f for f in folders if f.name == ref]
    if exact:
        return exact[0]
    matches = sorted(f for f in folders if f.name.startswith(ref)) if ref else []
    where = ", ".join(str(p) for p in parents) or "the results folder"
    if not matches:
        raise UserError(f"no run {ref!r} in {where} (cnn-tui runs lists them)")
    if len(matches) > 1:
        names = ", ".join(m.name for m in matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise UserError(f"{ref!r} matches {len(matches)} runs ({names}): give more of the id")
    return matches[0]
