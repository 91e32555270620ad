"""Run folders: ``results/<timestamp>-<task>/`` with a ``run.json`` saying what ran and how it ended.

``run.json`` is written when the run starts (status ``running``) and again when
it ends (``finished``, ``stopped`` or ``failed``), so a run that was killed
outright is still recognisable: its status stays ``running`` while its process
is gone, and ``mark_interrupted`` relabels it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cnn_tui import __version__
from cnn_tui.core import backend, fileio
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.params import DataParams, HyperParams

RUN_FILE = "run.json"
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")


class Run:
    """One task's folder of results."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = path
        self.record = record
        self._started = time.monotonic()

    @classmethod
    def create(cls, parent: str | os.PathLike[str], task: str, *, command: str | None = None) -> Run:
        parent = Path(parent)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            mark_interrupted(parent)
            for n in range(1, 1000):
                path = parent / (f"{stamp}-{task}" if n == 1 else f"{stamp}-{task}-{n}")
                try:
                    path.mkdir()
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
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "details": {},
        }
        run = cls(path, record)
        run.write()
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self) -> None:
        fileio.write_json(self.path / RUN_FILE, self.record)

    def save_params(self, data: DataParams | None = None, hyper: HyperParams | None = None) -> None:
        if data is not None:
            data.save(self.file("data_params.json"))
        if hyper is not None:
            hyper.save(self.file("hyper_params.json"))

    def add_details(self, **details: Any) -> None:
        self.record["details"].update(details)
        self.write()

    def finish(self, status: str, message: str = "", **details: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self.record.update(
            status=status,
            message=message,
            finished=datetime.now().isoformat(timespec="seconds"),
            seconds=round(time.monotonic() - self._started, 3),
            device=backend.device_label(),
            files=sorted(p.name for p in self.path.iterdir() if not p.name.startswith(".")),
        )
        self.record["details"].update(details)
        self.write()


def read_run(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mark_interrupted(parent: Path) -> list[Path]:
    """Relabel runs on this host left ``running`` by a process that no longer exists."""
    changed = []
    if not parent.is_dir():
        return changed
    host = socket.gethostname()
    for folder in sorted(parent.iterdir()):
        record = read_run(folder) if folder.is_dir() else None
        if not record or record.get("status") != "running" or record.get("host") != host:
            continue
        if _alive(int(record.get("pid") or 0)):
            continue
        record["status"] = "interrupted"
        record["message"] = "the process ended before the run finished (killed, or the machine stopped)"
        try:
            fileio.write_json(folder / RUN_FILE, record)
        except ResultsError:
            continue
        changed.append(folder)
    return changed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
