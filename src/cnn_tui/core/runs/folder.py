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
dies, however it dies. Whether a run is alive is asked of that lock (``lock_held``), never
of what run.json says: a record is data anyone who can write the folder may have forged.
"""

from __future__ import annotations

import json
import math
import os
import stat
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

try:
    import fcntl
except ImportError:  # not Unix: no run locks to take or check
    fcntl = None  # type: ignore[assignment]

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
ENDED = ("finished", "stopped", "failed", "interrupted")
HEARTBEAT_SECONDS = 10.0
# A run on another host (a shared results folder) cannot be checked by pid: no heartbeat for this
# long means its process is gone.
STALE_SECONDS = 120.0
RECORD_LIMIT = 1 << 20  # bytes: a run.json or task.json is a few KB; a larger one is no record of ours
# how long a claim retries while another process checks the lock (``lock_held`` holds it for an instant)
CLAIM_RETRY_SECONDS = 0.5
INTERRUPTED_MESSAGE = "the process ended before the run finished (killed, or the machine stopped)"
# what each task is called where the user reads it (a TaskSpec's label adds "with validation")
TASK_LABELS = {"train": "training", "tune": "tuning", "pipeline": "pipeline", "evaluate": "evaluation",
               "predict": "prediction", "lr_find": "learning-rate finder"}


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
        if fcntl is None:
            raise ResultsError("runs need a Unix system (file locks)", path=self.path)
        try:
            handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 - held for the run's lifetime
        except OSError as exc:
            raise ResultsError(f"cannot lock the run folder ({exc.strerror or exc})", path=self.path) from None
        deadline = time.monotonic() + CLAIM_RETRY_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:  # not somebody's check: a process holds it
                    handle.close()
                    raise RunBusy("another process is running this run", path=self.path) from None
                time.sleep(0.01)
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


def read_record(source: str | os.PathLike[str], *, limit: int | None = RECORD_LIMIT) -> dict[str, Any] | None:
    """A small JSON object a run folder holds (run.json, task.json, the params), read as data: None
    when the file is missing, cannot be read, is not a plain
    file (a fifo would block the reader), is larger than ``limit`` bytes (checked before reading a
    byte), is not UTF-8 JSON, or holds something other than an object (a list, a number). Each
    caller decides what None means to it: a default, a folder that is not a run, an error of its own."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or (limit is not None and info.st_size > limit):
                return None
            data = handle.read() if limit is None else handle.read(limit + 1)
        if limit is not None and len(data) > limit:  # it grew while we looked
            return None
        value = json.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def read_run(path: Path) -> dict[str, Any] | None:
    """The run's run.json, its fields checked (``checked_record``); None when the folder holds no
    readable one (not a run folder)."""
    raw = read_record(path / RUN_FILE)
    return None if raw is None else checked_record(raw)


_TEXTS = ("run_id", "task", "message", "started", "finished", "command", "cnn_tui", "backend", "device", "host",
          "boot_id")
_WHOLE_NUMBERS = ("pid_start", "uid", "exit_code", "resumed")


def checked_record(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with every field this version reads of the type it reads it as: a field that is not
    (a pid of ``"abc"``, a heartbeat of ``"x"``, details that are a list) is set to what says least
    (no pid, a heartbeat long stale, no details), a status that is none of ours reads ``failed``,
    and the message says which fields were damaged. So a damaged record is one run's line, never
    an exception in whoever reads it."""
    record = dict(raw)
    damaged: list[str] = []

    def spoil(key: str, value: Any) -> None:
        record[key] = value
        damaged.append(key)

    for key in _TEXTS:
        if record.get(key) is not None and not isinstance(record[key], str):
            spoil(key, None)
    for key in _WHOLE_NUMBERS:
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            spoil(key, None)
    if record.get("pid") is not None and processes.recorded_pid(record) is None:
        spoil("pid", None)
    seconds = record.get("seconds")
    if seconds is not None and ((number := _number(seconds)) is None or number < 0):
        spoil("seconds", None)
    if record.get("heartbeat") is not None and _number(record["heartbeat"]) is None:
        spoil("heartbeat", 0.0)  # long stale: a damaged heartbeat keeps no run alive
    if record.get("status") not in STATUSES:
        spoil("status", "failed")
    details = record.get("details")
    if not isinstance(details, dict):
        spoil("details", {})
    elif details.get("final") is not None and not isinstance(details["final"], dict):
        record["details"] = {k: v for k, v in details.items() if k != "final"}
        damaged.append("details")
    if record.get("files") is not None and not isinstance(record["files"], list):
        spoil("files", [])
    if damaged:
        record["message"] = f"run.json is damaged ({', '.join(damaged)} not as this version writes it)"
    return record


def lock_held(path: Path) -> bool | None:
    """Whether a process holds the run's lock, checked without keeping it: True; False when no
    process does (or there is no lock file: the run never started); None when it cannot be checked.

    flock has no query: the check takes the lock and drops it at once, on a descriptor of its own
    (so it conflicts even with a lock this very process holds). A claim in that instant retries."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return None  # not ours to read, or a link planted in its place
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # no run locks a fifo or a device
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def not_ours(path: Path) -> int | None:
    """The uid that owns the run folder, its run.json or its lock when it is not this user's; None
    when all are ours. What run.json says (its ``uid``) is never asked: anyone could have written it."""
    if not hasattr(os, "getuid"):
        return None
    me = os.getuid()
    for item in (path, path / RUN_FILE, path / LOCK_FILE):
        try:
            owner = os.lstat(item).st_uid
        except FileNotFoundError:
            if item == path / LOCK_FILE:
                continue
            return -1
        except OSError:
            return -1
        if owner != me:
            return owner
    return None


def task_label(task: str) -> str:
    """The task as the user knows it; a task this version does not know, by its name."""
    return TASK_LABELS.get(task, task)


def _number(value: Any) -> float | None:
    """``value`` when it is a finite number (not JSON's ``true``), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def effective_status(record: dict[str, Any], folder: Path | None = None) -> str:
    """The status to show: a ``running`` run whose process is gone is ``interrupted``.

    With its ``folder``, a run on this host is running when a process holds its lock. A run whose
    lock is not held yet (created, its process not started) counts as running while the process
    its record names lives and its heartbeat is fresh; that is for showing only: ``control.stop``
    signals nothing whose lock is not held."""
    status = record.get("status") or "failed"
    if status not in STATUSES:
        return "failed"
    if status != "running":
        return status
    beat = _number(record.get("heartbeat"))
    # no heartbeat: a record from before there were any; one that is not a number: a damaged record
    fresh = record.get("heartbeat") is None or (beat is not None and time.time() - beat < STALE_SECONDS)
    alive = processes.is_same_process(record)
    if alive is None:  # another host: trust its heartbeat
        return "running" if fresh else "interrupted"
    if folder is not None and lock_held(folder):
        return "running"
    return "running" if alive and fresh else "interrupted"


def mark_interrupted(parent: Path) -> list[Path]:
    """Write ``interrupted`` into the runs under ``parent`` left ``running`` by a dead process."""
    changed: list[Path] = []
    if not parent.is_dir():
        return changed
    for folder in sorted(parent.iterdir()):
        record = read_run(folder) if folder.is_dir() else None
        if not record or record.get("status") != "running" or effective_status(record, folder) != "interrupted":
            continue
        record["status"] = "interrupted"
        record["message"] = INTERRUPTED_MESSAGE
        try:
            fileio.write_json(folder / RUN_FILE, record)
        except ResultsError:
            continue
        changed.append(folder)
    return changed
