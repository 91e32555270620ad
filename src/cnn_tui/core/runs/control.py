"""Starting, stopping, resuming and following runs: what the CLI and the TUI call.

``prepare`` makes a run folder holding everything the run needs (params, task,
a starting model); the caller then either executes it in its own process
(``run_here``: the CLI's foreground runs) or ``launch``es a detached run process
(``core.runs.process``) that outlives the terminal. ``stop`` signals a run's
process only after checking that it is that process and that it is the
caller's; ``follow`` replays a run's events and then follows them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.events import Emit, ignore
from cnn_tui.core.params.files import DataParams, HyperParams, check_fits, check_grid_fits
from cnn_tui.core.runs import processes
from cnn_tui.core.runs.events_file import follow as follow_events
from cnn_tui.core.runs.execute import RESUMABLE, TASKS, Inputs, Outcome, TaskSpec, execute, load_params
from cnn_tui.core.runs.folder import Run, effective_status, lock_held, not_ours, read_run
from cnn_tui.core.runs.lifecycle import RunSession
from cnn_tui.core.runs.system_monitor import SAMPLED_TASKS, SystemMonitor
from cnn_tui.core.tuning.dask_executor import check_cluster, check_search, reach_scheduler
from cnn_tui.core.tuning.executors import SKIP_FILE
from cnn_tui.core.tuning.search import check_grid_size, check_strategy

LOG_FILE = "run.log"
START_MODEL = "start_model.keras"
CLAIM_SECONDS = 60.0  # how long a new run process may take to take over its folder


def prepare(spec: TaskSpec, data: DataParams, hyper: HyperParams | None, *, parent: Path | None = None,
            command: str | None = None, start_model: Any = None) -> Run:
    """Check what can be checked cheaply, then make the run folder with the params and the task."""
    if spec.task not in TASKS:
        raise UserError(f"unknown task {spec.task!r}; choose one of {', '.join(TASKS)}")
    if spec.task in ("train", "pipeline", "tune", "lr_find") and hyper is None:
        raise UserError(f"{spec.task} needs hyper params")
    if spec.task in ("train", "pipeline", "lr_find") and start_model is None and not spec.model:
        check_fits(data, hyper.first())
    elif spec.task == "tune":
        check_grid_size(hyper, spec.strategy)  # before anything is listed: a grid can be astronomically large
        check_strategy(hyper, spec.strategy)
        check_grid_fits(data, hyper)
        if spec.cluster or spec.security:
            spec.security = check_search(spec.cluster, spec.security, jobs=spec.jobs, gpus=spec.gpus)
            reach_scheduler(check_cluster(spec.cluster, spec.security))  # a scheduler answers there, in seconds
    if spec.model:
        spec.model = str(Path(spec.model).expanduser().resolve())
    run = Run.create(parent or data.results_path, spec.task, command=command)
    run.save_params(data, hyper)
    if start_model is not None:  # the TUI's model (new or loaded) is the one the run trains
        spec.model = str(start_model.save(run.file(START_MODEL)))
    spec.save(run.path)
    return run


def run_here(run: Run, spec: TaskSpec, *, emit: Emit = ignore, stop: threading.Event | None = None,
             inputs: Inputs | None = None) -> Outcome:
    """Execute the run in this process, in its session: claimed, beating, its events written, ended
    (by the outcome, or by the exception, which is re-raised), released. A training or a search is
    sampled (GPUs, CPU, memory) while it goes; the sampling ends before the run's end is written."""
    with RunSession(run, spec.task, resumed=spec.resume, emit=emit) as session:
        with SystemMonitor(session.emit, interval=None if spec.task in SAMPLED_TASKS else 0):
            outcome = execute(run, spec, emit=session.emit, stop=stop, inputs=inputs)
        session.end(outcome.status, outcome.message, outcome.exit_code, outcome.details)
    return outcome


def launch(run: Run, *, claim_seconds: float = CLAIM_SECONDS) -> subprocess.Popen:
    """Start the run's own process, detached from this terminal, and wait until it has taken
    over the run folder (so a ``stop`` right after never signals the wrong process)."""
    with open(run.file(LOG_FILE), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnn_tui.core.runs.process", str(run.path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + claim_seconds
    while time.monotonic() < deadline:
        record = read_run(run.path) or {}
        if record.get("pid") == proc.pid:
            run.record = record
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    record = read_run(run.path) or {}
    if record.get("status") == "failed" and record.get("message"):
        raise UserError(f"the run could not start: {record['message']}")
    raise UserError(f"the run process did not start (see {run.file(LOG_FILE)}): {_last_line(run.file(LOG_FILE))}")


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "no output"


def _check_owner(folder: Path, doing: str) -> None:
    """Refuse a run folder that is not this user's: the folder, its run.json and its lock must be
    ours (a shared results folder may hold another user's runs, or "runs" another user planted)."""
    owner = not_ours(folder)
    if owner is not None:
        whose = f"uid {owner}" if owner >= 0 else "its owner cannot be checked"
        raise UserError(f"cannot {doing} run {folder.name}: it belongs to another user ({whose})")


def stop(folder: Path, *, wait: bool = True, timeout: float | None = None) -> dict[str, Any]:
    """Ask the run to stop (it saves within a batch); with ``wait``, until it has ended.

    Only a live run of ours is signalled: the folder and its record are this user's, a process
    holds the run's lock, and run.json names that process fully (pid, start time, boot) and it is
    still that process. Whatever else run.json says, nothing is signalled."""
    record = read_run(folder)
    if record is None:
        raise UserError(f"{folder} is not a run folder (no readable run.json)")
    status = effective_status(record, folder)
    if status != "running":
        raise UserError(f"run {folder.name} is not running (it is {status})")
    _check_owner(folder, "stop")
    if processes.is_same_process(record) is None:
        raise UserError(f"run {folder.name} runs on {record.get('host')}: stop it there")
    if lock_held(folder) is not True:
        raise UserError(f"run {folder.name} is not running (no process holds its lock)")
    if not processes.full_identity(record):
        raise UserError(f"run {folder.name} cannot be stopped: its run.json does not say which process runs it")
    if not processes.signal_process(record, signal.SIGTERM):
        raise UserError(f"run {folder.name} is not running (its process has ended)")
    deadline = None if timeout is None else time.monotonic() + timeout
    while wait and (deadline is None or time.monotonic() < deadline):
        record = read_run(folder) or record
        if effective_status(record, folder) != "running":
            break
        time.sleep(0.1)
    return read_run(folder) or record


def skip_fit(folder: Path) -> None:
    """Ask a running search to skip the fit it is training (recorded as pruned, by the user); the
    search goes on with the next. Searches with worker processes or a cluster have no such skip."""
    record = read_run(folder)
    if record is None or effective_status(record, folder) != "running":
        raise UserError(f"run {folder.name} is not running")
    spec = TaskSpec.load(folder)
    if spec.task != "tune":
        raise UserError(f"run {folder.name} is not a search: only a search's fits can be skipped")
    if spec.jobs > 1 or spec.cluster or spec.gpus:
        raise UserError(f"run {folder.name} runs its fits in worker processes: they cannot be skipped one by one")
    work = folder / ".work"
    work.mkdir(exist_ok=True)
    (work / SKIP_FILE).touch()


def prepare_resume(folder: Path) -> tuple[Run, TaskSpec]:
    """The run and its task, marked to go on from what its folder holds."""
    record = read_run(folder)
    if record is None:
        raise UserError(f"{folder} is not a run folder (no readable run.json)")
    status = effective_status(record, folder)
    if status not in ("stopped", "interrupted"):
        why = {"running": "it is still running", "finished": "it finished",
               "failed": f"it failed ({record.get('message') or 'see run.json'}); start a new run instead"}[status]
        raise UserError(f"cannot resume run {folder.name}: {why}")
    _check_owner(folder, "resume")
    spec = TaskSpec.load(folder)
    if spec.task not in RESUMABLE:
        raise UserError(f"cannot resume run {folder.name}: a {spec.task} run is not resumable; run it again")
    if spec.task == "tune":  # the folder's params may have been edited since: every combination must still fit
        data, hyper = load_params(Run.open(folder))
        if hyper is not None:
            check_grid_fits(data, hyper)
    spec.resume = True
    spec.save(folder)
    return Run.open(folder), spec


def is_running(folder: Path) -> bool:
    record = read_run(folder)
    return record is not None and effective_status(record, folder) == "running"


def follow(folder: Path, *, stop: threading.Event | None = None, interval: float = 0.05) -> Iterator[Any]:
    """The run's events so far, then each new one, until the run has ended (or ``stop``)."""
    return follow_events(folder, alive=lambda: is_running(folder), stop=stop, interval=interval)
