"""Finding runs: every run folder under the results folders in use, summarised for a list,
and a run named by its id, a unique prefix of one, or its folder."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.params.fields import HYPER_FIELDS
from cnn_tui.core.runs.folder import RUN_FILE, read_record, read_run
from cnn_tui.core.runs.results import read_ending
from cnn_tui.core.runs.system_monitor import last_sample


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
    system: dict[str, Any] | None = None  # a running run's last SystemSample (its fields), if it wrote one
    model_run: str = ""  # an evaluation of a run's own model: that run's folder (its test accuracy is shown with it)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def differing_params(hyper: dict[str, Any]) -> dict[str, Any]:
    """The hyper fields whose value is not the seed's default. A default list's first value is
    what training uses, so a single value equal to it is no difference."""
    defaults = {f.name: f.default for f in HYPER_FIELDS}

    def same(value: Any, default: Any) -> bool:
        return value == default or (isinstance(default, list) and value in (default[0], [default[0]]))

    return {k: v for k, v in hyper.items() if k in defaults and not same(v, defaults[k])}


def summarize(folder: Path, record: dict[str, Any] | None = None) -> RunSummary | None:
    """The run's line in the list; None when ``folder`` has no readable run.json."""
    record = record if record is not None else read_run(folder)
    if record is None:
        return None
    ending = read_ending(folder, record=record)
    data = read_record(folder / "data_params.json") or {}
    hyper = read_record(folder / "hyper_params.json") or {}
    source = data.get("test_dir") if ending.task in ("evaluate", "predict") else data.get("train_dir")
    source = source if isinstance(source, str) else ""
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    model_run = details.get("model_run") if isinstance(details.get("model_run"), str) else ""
    return RunSummary(
        run_id=ending.run_id, run_dir=str(folder), task=ending.task, status=ending.status,
        started=str(record.get("started") or ""), seconds=ending.seconds, message=ending.message,
        data="/".join(Path(source).parts[-2:]) if source else "", params=differing_params(hyper),
        metrics=dict(ending.metrics),  # the Runs view adds a running run's progress to its copy
        pid=record.get("pid"), exit_code=record.get("exit_code"),  # as recorded: None for a killed run
        system=_last_system(folder) if ending.status == "running" else None,
        model_run=model_run,
    )


def _last_system(folder: Path) -> dict[str, Any] | None:
    sample = last_sample(folder)
    return dataclasses.asdict(sample) if sample is not None else None


# what reading a folder someone else wrote can raise, past the checks of its records
_UNREADABLE = (OSError, ValueError, TypeError, AttributeError, KeyError, OverflowError, RecursionError)


def _summary_or_line(folder: Path) -> RunSummary | None:
    """The folder's summary; a folder whose files defeat the reader is still one line, failed,
    saying why, and never costs the listing."""
    try:
        summary = summarize(folder)
        why = "its run.json cannot be read (not a JSON object, or over 1 MiB)"
    except _UNREADABLE as exc:
        summary, why = None, f"cannot read this run ({type(exc).__name__}: {exc})"[:200]
    if summary is not None:
        return summary
    return RunSummary(run_id=folder.name, run_dir=str(folder), task="?", status="failed", started="", seconds=None,
                      message=why)


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
    summaries = [s for folder in run_folders(parents) if (s := _summary_or_line(folder)) is not None]
    summaries.sort(key=lambda s: (s.started, s.run_id), reverse=True)
    link_evaluations(summaries)
    return summaries


def link_evaluations(summaries: list[RunSummary]) -> None:
    """A training run without a test accuracy of its own takes the newest one of the evaluations of its
    model (``model_run``): the TUI's e and p after a training make runs of their own, and Compare and
    the Runs view show the figure with the training it measures."""
    by_folder = {os.path.realpath(s.run_dir): s for s in summaries}
    own = {id(s) for s in summaries if "test_accuracy" in s.metrics}
    for evaluation in sorted(summaries, key=lambda s: (s.started, s.run_id)):  # oldest first: the newest wins
        target = by_folder.get(os.path.realpath(evaluation.model_run)) if evaluation.model_run else None
        if target is not None and target is not evaluation and id(target) not in own \
                and "test_accuracy" in evaluation.metrics:
            target.metrics["test_accuracy"] = evaluation.metrics["test_accuracy"]


def linked_test_accuracy(folder: Path) -> float | None:
    """The test accuracy the newest evaluation of ``folder``'s model recorded (its sibling run folders)."""
    summaries = [s for s in (_summary_or_line(f) for f in run_folders([Path(folder).parent])) if s is not None]
    link_evaluations(summaries)
    target = next((s for s in summaries if os.path.realpath(s.run_dir) == os.path.realpath(folder)), None)
    return target.metrics.get("test_accuracy") if target is not None else None


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
