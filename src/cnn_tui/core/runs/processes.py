"""Which process a run is, and whether it still is: identities that survive pid reuse.

A pid alone is not an identity: after a reboot, or on a busy server after a few
hours, the pid written in ``run.json`` may belong to another program. A run
records its pid together with the process's start time (``/proc/<pid>/stat``)
and the kernel's boot id; ``is_same_process`` checks all three before anyone
signals it. Where ``/proc`` is missing (macOS) the checks fall back to the pid.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def boot_id() -> str | None:
    """The kernel's id for this boot: a run recorded under another boot cannot be running."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its last ')'
    return text[text.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot, or None where /proc has no answer."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def identity(pid: int | None = None) -> dict[str, Any]:
    """What ``run.json`` records so that later checks know this very process."""
    pid = pid or os.getpid()
    return {"pid": pid, "pid_start": start_ticks(pid), "boot_id": boot_id(), "host": socket.gethostname(),
            "uid": os.getuid() if hasattr(os, "getuid") else None}


def _exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    fields = _stat_fields(pid)
    return not (fields and fields[0] in ("Z", "X"))  # a zombie has ended, only its parent has not reaped it


def is_same_process(record: dict[str, Any]) -> bool | None:
    """True when the process ``record`` describes is alive; False when it is gone; None when
    this machine cannot tell (the run was started on another host)."""
    if record.get("host") not in (None, socket.gethostname()):
        return None
    pid = int(record.get("pid") or 0)
    if record.get("boot_id") and boot_id() and record["boot_id"] != boot_id():
        return False  # the machine restarted since
    if not _exists(pid):
        return False
    recorded = record.get("pid_start")
    if recorded is not None:
        now = start_ticks(pid)
        if now is not None and now != recorded:
            return False  # the pid was reused by another program
    return True


def signal_process(record: dict[str, Any], sig: int = signal.SIGTERM) -> bool:
    """Signal the recorded process only if it is still that process. False if it is gone."""
    if not is_same_process(record):
        return False
    try:
        os.kill(int(record["pid"]), sig)
    except ProcessLookupError:
        return False
    return True
