"""The machine as a container sees it: the worker count follows the CPU quota, the streaming
threshold the cgroup memory limit (faked here with files), and cnn-tui's own folders come from
platformdirs unless an environment variable names them."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from cnn_tui.core import memory, places
from cnn_tui.core.data import cache, feeding, pool

GIB = 2**30


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake /proc/meminfo, /proc/self/cgroup and /sys/fs/cgroup; returns a function that writes them."""
    root = tmp_path / "cgroup"
    root.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "PROC_CGROUP", tmp_path / "proc_cgroup")
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.delenv("CNN_TUI_STREAM_ABOVE_MB", raising=False)

    def write(*, available: int | None, cgroup: str, files: dict[str, str] = {}) -> None:  # noqa: B006
        if available is not None:
            (tmp_path / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {available // 1024} kB\n")
        (tmp_path / "proc_cgroup").write_text(cgroup)
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    return write


def test_a_container_limit_lower_than_free_memory_sets_the_threshold(machine):
    machine(available=16 * GIB, cgroup="0::/kubepods/pod1\n", files={
        "kubepods/pod1/memory.max": str(GIB), "kubepods/pod1/memory.current": str(GIB // 2),
        "kubepods/pod1/memory.stat": f"anon 1\ninactive_file {GIB // 8}\nactive_file 5\n",
    })
    room = GIB - (GIB // 2 - GIB // 8)  # the page cache the kernel can drop does not count as used
    assert memory.cgroup_memory_room() == room
    assert memory.available_memory_bytes() == room
    assert feeding.stream_limit_bytes() == int(room * feeding.STREAM_ABOVE_SHARE)


def test_a_parent_cgroups_limit_binds_too(machine):
    machine(available=16 * GIB, cgroup="0::/kubepods/pod1/c1\n", files={
        "kubepods/pod1/c1/memory.max": "max", "kubepods/pod1/memory.max": str(2 * GIB),
        "kubepods/pod1/memory.current": str(GIB),
    })
    assert memory.available_memory_bytes() == GIB


def test_the_containers_root_holds_its_limit_when_the_path_is_the_hosts(machine):
    machine(available=16 * GIB, cgroup="0::/system.slice/docker-abc.scope\n",
            files={"memory.max": str(3 * GIB), "memory.current": "0"})
    assert memory.available_memory_bytes() == 3 * GIB


def test_no_limit_leaves_the_free_memory(machine):
    machine(available=4 * GIB, cgroup="0::/user.slice\n", files={"user.slice/memory.max": "max", "memory.max": "max"})
    assert memory.cgroup_memory_room() is None
    assert memory.available_memory_bytes() == 4 * GIB


def test_free_memory_lower_than_the_limit_wins(machine):
    machine(available=GIB, cgroup="0::/\n", files={"memory.max": str(8 * GIB), "memory.current": "0"})
    assert memory.available_memory_bytes() == GIB


def test_cgroup_v1_limits_count_and_its_unlimited_number_does_not(machine):
    unlimited = "9223372036854771712"
    machine(available=8 * GIB, cgroup="4:memory:/docker/x\n3:cpu,cpuacct:/docker/x\n", files={
        "memory/docker/x/memory.limit_in_bytes": unlimited, "memory/memory.limit_in_bytes": unlimited})
    assert memory.available_memory_bytes() == 8 * GIB
    machine(available=8 * GIB, cgroup="4:memory:/docker/x\n", files={
        "memory/docker/x/memory.limit_in_bytes": str(2 * GIB), "memory/docker/x/memory.usage_in_bytes": str(GIB),
        "memory/docker/x/memory.stat": f"cache 7\ntotal_inactive_file {GIB // 4}\n"})
    assert memory.available_memory_bytes() == GIB + GIB // 4


def test_nothing_to_read_is_none(machine):
    machine(available=None, cgroup="")
    assert memory.available_memory_bytes() is None and feeding.stream_limit_bytes() is None


# ---------------------------------------------------------------- CPUs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroup CPU quotas are Linux's")
def test_the_worker_count_follows_a_container_cpu_quota(monkeypatch):
    """A quota of one CPU (cgroup v2's cpu.max "100000 100000"), as `docker run --cpus 1` sets it:
    one worker, however many cores the host has. joblib reads the file; here it reads a fake one."""
    from joblib.externals.loky.backend import context

    fake = {"/sys/fs/cgroup/cpu.max": "100000 100000\n"}
    real_exists, real_open = os.path.exists, open
    monkeypatch.setattr(os.path, "exists", lambda p: p in fake or real_exists(p))
    monkeypatch.setattr(context, "open", lambda p, *a, **k: io.StringIO(fake[p]) if p in fake else real_open(p, *a, **k),
                        raising=False)
    monkeypatch.delenv("CNN_TUI_WORKERS", raising=False)
    monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)
    assert pool.worker_count() == 1
    fake["/sys/fs/cgroup/cpu.max"] = "max 100000\n"  # no quota: the CPUs this process may run on
    assert pool.worker_count() == len(os.sched_getaffinity(0))


def test_the_environment_still_sets_the_worker_count(monkeypatch):
    monkeypatch.setenv("CNN_TUI_WORKERS", "5")
    assert pool.worker_count() == 5


# ---------------------------------------------------------------- folders


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders are the Linux convention")
def test_folders_follow_xdg_unless_a_variable_names_them(monkeypatch, tmp_path):
    from cnn_tui.tui.launch import log_file

    for name in ("CNN_TUI_CACHE_DIR", "CNN_TUI_LOG", "CNN_TUI_CONFIG_DIR", "CNN_TUI_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "k"))
    assert cache.cache_dir() == tmp_path / "c" / "cnn-tui" / "images"
    assert log_file() == tmp_path / "s" / "cnn-tui" / "log" / "tui.log"
    assert places.config_folder() == tmp_path / "k" / "cnn-tui"
    monkeypatch.setenv("CNN_TUI_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("CNN_TUI_LOG", str(tmp_path / "my.log"))
    monkeypatch.setenv("CNN_TUI_CONFIG_DIR", str(tmp_path / "settings"))
    assert cache.cache_dir() == tmp_path / "mine" and log_file() == Path(tmp_path / "my.log")
    assert places.config_folder() == tmp_path / "settings"
