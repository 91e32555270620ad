"""How much memory this process may still take: MemAvailable, bounded by the tightest cgroup limit over it
(a container's limit is often far below the host's free memory)."""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def available_memory_bytes() -> int | None:
    """The memory this process may still take: the machine's MemAvailable, or less when its
    container's cgroup limit leaves less (Docker's --memory, a Kubernetes pod's limit) — there the
    kernel kills the process long before the machine runs short. None where neither can be read."""
    figures = [n for n in (_meminfo_available(), cgroup_memory_room()) if n is not None]
    return min(figures) if figures else None


def _meminfo_available() -> int | None:
    """MemAvailable from /proc/meminfo (Linux)."""
    try:
        with open(MEMINFO, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max": no limit
        return None
    return int(text)


def _cgroup_folders() -> list[tuple[Path, str, str]]:
    """(folder, limit file, usage file) for this process's memory cgroup and its ancestors, v2 and v1."""
    try:
        lines = PROC_CGROUP.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    found: list[tuple[Path, str, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        if controllers == "":  # cgroup v2, the unified hierarchy
            base, limit, usage = CGROUP_ROOT, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            base, limit, usage = CGROUP_ROOT / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        folder = base / relative.strip("/")
        while True:  # a limit on a parent cgroup binds this process too
            found.append((folder, limit, usage))
            if folder == base:
                break
            folder = folder.parent  # up to the root: in a container that is the container's own cgroup
    return found


def _inactive_file(folder: Path) -> int:
    """Page cache the kernel reclaims before it kills anything (counted in the usage figure):
    what Kubernetes subtracts to get a container's working set."""
    try:
        for line in (folder / "memory.stat").read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name in ("inactive_file", "total_inactive_file") and value.strip().isdigit():
                return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def cgroup_memory_room() -> int | None:
    """What the tightest cgroup memory limit over this process still allows (limit less usage);
    None when no limit is set or there is no cgroup to read."""
    rooms = []
    for folder, limit_name, usage_name in _cgroup_folders():
        limit = _read_number(folder / limit_name)
        if limit is None or limit >= UNLIMITED:
            continue
        usage = max(0, (_read_number(folder / usage_name) or 0) - _inactive_file(folder))
        rooms.append(max(0, limit - usage))
    return min(rooms) if rooms else None
