"""Run folders: ``results/<timestamp>-<task>/`` with a ``run.json`` saying what ran and how it ended.

``run.json`` is written when the run starts (status ``running``, with the
identity of the process that runs it), every ``HEARTBEAT_SECONDS`` while it runs,
and when it ends (``finished``, ``stopped`` or ``failed``, with the exit code).
A run whose process died without ending it (SIGKILL, a reboot) keeps
``running`` on disk; ``effective_status`` calls it ``interrupted`` and
``mark_interrupted`` writes that down.

The process that runs a run holds an exclusive lock on ``<run>/.lock`` for as
long as it runs, so two processes never write the same run folder (a second
``resume`` of one run is refused); the kernel drops the lock when the process
dies, however it dies.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cnn_tui import __version__
from cnn_tui.core import backend, fileio
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import processes

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
ENDED = ("finished", "stopped", "failed", "interrupted")
HEARTBEAT_SECONDS = 10.0
# A run on another host (a shared results folder) cannot be checked by pid: no heartbeat for this
# long means its process is gone.
STALE_SECONDS = 120.0
INTERRUPTED_MESSAGE = "the process ended before the run finished (killed, or the machine stopped)"
# what each task is called where the user reads it (a TaskSpec's label adds "with validation")
TASK_LABELS = {"train": "training", "tune": "tuning", "pipeline": "pipeline", "evaluate": "evaluation",
               "predict": "prediction"}


class RunBusy(ResultsError):
    """Another process holds the run folder's lock."""


class Run:
    """One task's folder of results, as seen by the process that runs it."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = path
        self.record = record
        self._started = time.monotonic()
        self._lock = threading.Lock()  # the heartbeat thread writes run.json too
        self._lock_handle: Any = None
        self._heartbeat: threading.Event | None = None

    @classmethod
    def create(cls, parent: str | os.PathLike[str], task: str, *, command: str | None = None) -> Run:
        parent = Path(parent)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        if parent.exists() and not parent.is_dir():
            raise ResultsError("is a file, not a folder for run folders", path=parent)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            mark_interrupted(parent)
            for n in range(1, 1000):
                path = parent / (f"{stamp}-{task}" if n == 1 else f"{stamp}-{task}-{n}")
                try:
                    path.mkdir()  # atomic: two runs started in the same second get two folders
                    break
                except FileExistsError:
                    continue
        except OSError as exc:
            raise ResultsError(f"cannot create a run folder here ({exc.strerror or exc})", path=parent) from None
        record = {
            "run_id": path.name,
            "task": task,
            "status": "running",
            "message": "",
            "started": datetime.now().isoformat(timespec="seconds"),
            "finished": None,
            "seconds": None,
            "command": command,
            "cnn_tui": __version__,
            "backend": backend.backend_name(),
            "device": None,
            **processes.identity(),
            "heartbeat": time.time(),
            "exit_code": None,
            "details": {},
        }
        run = cls(path, record)
        run.write()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """An existing run folder, to run (a detached run's process) or to resume."""
        path = Path(path)
        record = read_run(path)
        if record is None:
            raise ResultsError("not a run folder (no readable run.json)", path=path)
        run = cls(path, record)
        if record.get("seconds"):  # resumed: the duration goes on from what the earlier process ran
            run._started -= float(record["seconds"])
        return run

    def claim(self) -> None:
        """Make this process the run's: take the folder's lock and record who runs it."""
        import fcntl  # noqa: PLC0415 — Unix only: the module stays importable where there is none

        try:
            handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 - held for the run's lifetime
        except OSError as exc:
            raise ResultsError(f"cannot lock the run folder ({exc.strerror or exc})", path=self.path) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RunBusy("another process is running this run", path=self.path) from None
        self._lock_handle = handle
        with self._lock:
            self.record.update(status="running", finished=None, exit_code=None, **processes.identity(),
                               heartbeat=time.time())
            self._write()

    def release(self) -> None:
        self.stop_heartbeat()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def start_heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Rewrite ``heartbeat`` in run.json every ``interval`` seconds until the run ends."""
        if self._heartbeat is not None:
            return
        self._heartbeat = stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                with self._lock:
                    if self.record.get("status") != "running":
                        return
                    self.record["heartbeat"] = time.time()
                    try:
                        self._write()
                    except ResultsError:
                        pass  # the disk filled up: the run goes on, its end is written when it can be

        threading.Thread(target=beat, name="run-heartbeat", daemon=True).start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.set()
            self._heartbeat = None

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        fileio.write_json(self.path / RUN_FILE, self.record)

    def save_params(self, data: DataParams | None = None, hyper: HyperParams | None = None) -> None:
        if data is not None:
            data.save(self.file("data_params.json"))
        if hyper is not None:
            hyper.save(self.file("hyper_params.json"))

    def add_details(self, **details: Any) -> None:
        with self._lock:
            self.record["details"].update(details)
            self._write()

    @property
    def ended(self) -> bool:
        return self.record.get("status") in ENDED

    def finish(self, status: str, message: str = "", *, exit_code: int | None = None, **details: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._lock:
            self.record.update(
                status=status,
                message=message,
                finished=datetime.now().isoformat(timespec="seconds"),
                seconds=round(time.monotonic() - self._started, 3),
                device=backend.device_label(),
                exit_code=exit_code,
                heartbeat=time.time(),
                files=sorted(p.name for p in self.path.iterdir() if not p.name.startswith(".")),
            )
            self.record["details"].update(details)
            self._write()


def read_run(path: Path) -> dict[str, Any] | None:
    """The run's run.json; None when the folder holds no readable one (not a run folder)."""
    return fileio.read_json_object(path / RUN_FILE)


def task_label(task: str) -> str:
    """The task as the user knows it; a task this version does not know, by its name."""
    return TASK_LABELS.get(task, task)


def effective_status(record: dict[str, Any]) -> str:
    """The status to show: a ``running`` run whose process is gone is ``interrupted``."""
    status = record.get("status") or "failed"
    if status != "running":
        return status
    alive = processes.is_same_process(record)
    if alive is None:  # another host: trust its heartbeat
        beat = record.get("heartbeat")
        alive = beat is None or time.time() - float(beat) < STALE_SECONDS
    return "running" if alive else "interrupted"


def mark_interrupted(parent: Path) -> list[Path]:
    """Write ``interrupted`` into the runs under ``parent`` left ``running`` by a dead process."""
    changed: list[Path] = []
    if not parent.is_dir():
        return changed
    for folder in sorted(parent.iterdir()):
        record = read_run(folder) if folder.is_dir() else None
        if not record or record.get("status") != "running" or effective_status(record) != "interrupted":
            continue
        record["status"] = "interrupted"
        record["message"] = INTERRUPTED_MESSAGE
        try:
            fileio.write_json(folder / RUN_FILE, record)
        except ResultsError:
            continue
        changed.append(folder)
    return changed
