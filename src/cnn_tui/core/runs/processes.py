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


PID_MAX = 4_194_304  # the kernel's largest (pid_max's ceiling): a bigger "pid" is no process


def _int(value: Any) -> int | None:
    """``value`` when it is a whole number (JSON's ``true`` is not one), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def recorded_pid(record: dict[str, Any]) -> int | None:
    """The record's pid when it can be a process's: a whole number above 1 (never init) and within
    the kernel's range; None for anything else (``"abc"``, ``true``, ``1e400``, a list)."""
    pid = _int(record.get("pid"))
    return pid if pid is not None and 1 < pid <= PID_MAX else None


def full_identity(record: dict[str, Any]) -> bool:
    """Whether the record names one process without doubt: a valid pid, its start ticks and the boot
    it ran in (each where this machine can check it). A record lacking any of them is never signalled."""
    if recorded_pid(record) is None:
        return False
    if PROC.is_dir() and (_int(record.get("pid_start")) is None or not isinstance(record.get("boot_id"), str)):
        return False
    return True


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
    """True when the process ``record`` describes is alive; False when it is gone (or the record's
    identity is no identity: a pid that is not one, a start time that is not a number); None when
    this machine cannot tell (the run was started on another host)."""
    host = record.get("host")
    if host is not None and host != socket.gethostname():
        return None
    pid = recorded_pid(record)
    if pid is None:
        return False
    recorded_boot = record.get("boot_id")
    if recorded_boot is not None and (not isinstance(recorded_boot, str) or (boot_id() and recorded_boot != boot_id())):
        return False  # the machine restarted since
    if not _exists(pid):
        return False
    recorded = record.get("pid_start")
    if recorded is not None:
        if _int(recorded) is None:
            return False
        now = start_ticks(pid)
        if now is not None and now != recorded:
            return False  # the pid was reused by another program
    return True


def signal_process(record: dict[str, Any], sig: int = signal.SIGTERM) -> bool:
    """Signal the recorded process only if the record names it fully (pid, start ticks, boot) and it
    is still that process. False if it is gone or the record cannot say."""
    pid = recorded_pid(record)
    if pid is None or not full_identity(record) or not is_same_process(record):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
