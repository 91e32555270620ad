"""Run records are data, not truth: a forged or damaged ``run.json`` (or ``task.json``) costs one
line about its own folder, never a listing, a new run or a traceback; and ``stop`` signals no
process whose run lock is not held, whatever the record says.

Each forged record names a live ``sleep`` child (where it names a pid at all); after the refused
``stop`` the child must still be alive. One case holds the lock and names the child fully: there
the stop does reach it, which shows the other cases would have seen a signal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cnn_tui.cli import main
from cnn_tui.core.errors import UserError
from cnn_tui.core.runs import control, processes
from cnn_tui.core.runs.folder import LOCK_FILE, STATUSES, Run
from cnn_tui.core.runs.index import list_runs

DEADLINE = 60.0  # generous: the machine may be loaded
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="process identities need /proc")


def _start(code: str, *args: str, ready: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    if ready is not None:
        assert proc.stdout is not None and proc.stdout.readline().strip() == ready  # blocks until it is
    return proc


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=DEADLINE)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process whose pid the forged records name: it must survive every refused stop."""
    proc = _start("import time; print('up', flush=True); time.sleep(600)", ready="up")
    yield proc
    _end(proc)


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """Hold a run folder's lock from another process (as a live run would), until the test ends."""
    holders: list[subprocess.Popen] = []

    def hold(folder: Path) -> subprocess.Popen:
        code = ("import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
                "print('held', flush=True); time.sleep(600)")
        holders.append(_start(code, str(folder / LOCK_FILE), ready="held"))
        return holders[-1]

    yield hold
    for proc in holders:
        _end(proc)


def _still_alive(proc: subprocess.Popen) -> bool:
    time.sleep(0.2)  # a signal sent is delivered long before this
    return proc.poll() is None


def _forge(parent: Path, **fields: Any) -> Path:
    """A run folder of ours, its run.json rewritten with ``fields`` (``None``: the field left out)."""
    run = Run.create(parent, "train")
    record = {**run.record, "status": "running", "heartbeat": time.time()}
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    (run.path / "run.json").write_text(json.dumps(record))
    return run.path


# what each forged record says, given the sleeper's pid and its full identity; lock: whether a
# process holds the folder's lock (a forger may start one)
STOP_CASES: dict[str, tuple[bool, Callable[[int, dict[str, Any]], dict[str, Any]]]] = {
    "pid only, no start time nor boot": (False, lambda pid, ident: {"pid": pid, "pid_start": None, "boot_id": None}),
    "identity copied from a live process": (False, lambda pid, ident: ident),
    "identity copied, the record says it is ours": (False, lambda pid, ident: {**ident, "uid": os.getuid()}),
    "pid true (would be init)": (False, lambda pid, ident: {**ident, "pid": True}),
    "pid as a string": (True, lambda pid, ident: {**ident, "pid": str(pid)}),
    "pid as a float": (True, lambda pid, ident: {**ident, "pid": float(pid)}),
    "lock held, no start time": (True, lambda pid, ident: {**ident, "pid_start": None}),
    "lock held, no boot id": (True, lambda pid, ident: {**ident, "boot_id": None}),
    "lock held, start time as a string": (True, lambda pid, ident: {**ident, "pid_start": str(ident["pid_start"])}),
    "lock held, start time true": (True, lambda pid, ident: {**ident, "pid_start": True}),
}


@pytest.mark.parametrize("case", list(STOP_CASES))
def test_stop_never_signals_what_a_forged_record_names(case, tmp_path, sleeper, lock_holder):
    locked, forge = STOP_CASES[case]
    folder = _forge(tmp_path / "results", **forge(sleeper.pid, processes.identity(sleeper.pid)))
    if locked:
        lock_holder(folder)
    with pytest.raises(UserError):
        control.stop(folder, wait=False)
    assert _still_alive(sleeper), case


def test_a_folder_that_is_not_ours_is_never_signalled_whatever_its_uid_says(tmp_path, sleeper, lock_holder,
                                                                            monkeypatch):
    folder = _forge(tmp_path / "results", **processes.identity(sleeper.pid))
    lock_holder(folder)
    someone_else = os.getuid() + 1
    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "uid": someone_else}))  # "it is yours"
    monkeypatch.setattr(os, "getuid", lambda: someone_else)  # we are another user, in a shared folder
    with pytest.raises(UserError, match="belongs to another user"):
        control.stop(folder, wait=False)
    assert _still_alive(sleeper)


def test_a_live_run_of_ours_is_signalled(tmp_path, sleeper, lock_holder):
    """The check of the cases above: lock held, the record names the process fully, all ours."""
    folder = _forge(tmp_path / "results", **processes.identity(sleeper.pid))
    lock_holder(folder)
    control.stop(folder, wait=False)
    sleeper.wait(timeout=DEADLINE)
    assert sleeper.returncode == -15


# ---------------------------------------------------------------- damaged records: one line each

# a run.json field and what a damaged or forged one holds, as JSON text (1e400 has no Python float)
RECORD_CASES = {
    "pid abc": ("pid", '"abc"'), "pid list": ("pid", "[1]"), "pid 1e400": ("pid", "1e400"),
    "pid huge": ("pid", "99999999999999999999999"), "pid object": ("pid", '{"a": 1}'), "pid true": ("pid", "true"),
    "pid negative": ("pid", "-5"), "pid_start text": ("pid_start", '"x"'), "boot_id number": ("boot_id", "5"),
    "host list": ("host", "[1]"), "heartbeat text": ("heartbeat", '"x"'), "heartbeat 1e400": ("heartbeat", "1e400"),
    "heartbeat list": ("heartbeat", "[1]"), "status number": ("status", "123"), "status unknown": ("status", '"exploded"'),
    "status list": ("status", "[1]"), "details list": ("details", "[1, 2]"), "details text": ("details", '"x"'),
    "details final list": ("details", '{"final": [1]}'), "details final text": ("details", '{"final": {"accuracy": "x"}}'),
    "seconds text": ("seconds", '"abc"'), "seconds 1e400": ("seconds", "1e400"), "seconds negative": ("seconds", "-3"),
    "seconds list": ("seconds", "[1]"), "started number": ("started", "123"), "message list": ("message", "[1]"),
    "task object": ("task", '{"a": 1}'), "run_id number": ("run_id", "5"), "exit_code text": ("exit_code", '"x"'),
    "files text": ("files", '"x"'),
}


def _damaged(parent: Path, key: str, raw: str) -> Path:
    """A run folder whose run.json (status running, a live process's identity: ours) has ``key`` = ``raw``."""
    run = Run.create(parent, "train")
    text = json.dumps({**run.record, "heartbeat": time.time()})
    (run.path / "run.json").write_text(text[:-1] + f', "{key}": {raw}}}')  # the last of a repeated key counts
    return run.path


@pytest.fixture
def good_run(tmp_path) -> Path:
    run = Run.create(tmp_path / "results", "train")
    run.finish("finished", "all good", exit_code=0, final={"accuracy": 0.9})
    return run.path


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_a_damaged_run_record_is_one_line_of_the_listing(case, tmp_path, good_run, capsys, monkeypatch):
    bad = _damaged(tmp_path / "results", *RECORD_CASES[case])
    summaries = {s.run_dir: s for s in list_runs([tmp_path / "results"])}
    assert set(summaries) == {str(good_run), str(bad)}, case
    assert summaries[str(good_run)].status == "finished" and summaries[str(bad)].status in STATUSES
    monkeypatch.chdir(tmp_path)
    for argv in (["runs"], ["runs", "--json"]):
        assert main(argv) == 0, (case, capsys.readouterr())
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err and bad.name in out, case
    assert json.loads(out)[0]["run_id"] in (good_run.name, bad.name)


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_a_damaged_run_record_costs_no_new_run_and_no_stop_traceback(case, tmp_path, good_run):
    bad = _damaged(tmp_path / "results", *RECORD_CASES[case])
    try:
        control.stop(bad, wait=False)
    except UserError:
        pass  # refused, in one line
    run = Run.create(tmp_path / "results", "train")  # a new run in that folder (it relabels dead runs first)
    assert run.path.is_dir() and run.path != bad


def test_a_huge_run_record_is_not_read(tmp_path, good_run):
    bad = Run.create(tmp_path / "results", "train").path
    with open(bad / "run.json", "r+b") as handle:  # sparse: 1 GB that takes no disk
        handle.truncate(1 << 30)
    started = time.monotonic()
    summaries = {s.run_dir: s for s in list_runs([tmp_path / "results"])}
    assert time.monotonic() - started < 5.0
    assert summaries[str(bad)].status == "failed" and str(good_run) in summaries
    Run.create(tmp_path / "results", "train")


TASK_CASES = {
    "a list": "[1, 2]", "validate text": '{"task": "train", "validate": "x"}', "task number": '{"task": 5}',
    "no task": '{"validate": 0.2}', "unknown task": '{"task": "mine"}', "cv text": '{"task": "tune", "cv": "x"}',
    "jobs true": '{"task": "tune", "jobs": true}', "gpus text": '{"task": "tune", "gpus": "01"}',
    "resume text": '{"task": "train", "resume": "yes"}', "model number": '{"task": "train", "model": 5}',
}


@pytest.mark.parametrize("case", list(TASK_CASES))
def test_resume_of_a_run_with_a_damaged_task_file_is_one_line(case, tmp_path, capsys, monkeypatch):
    run = Run.create(tmp_path / "results", "train")
    run.finish("stopped", "stopped by the user", exit_code=130)
    (run.path / "task.json").write_text(TASK_CASES[case])
    monkeypatch.chdir(tmp_path)
    assert main(["resume", run.path.name]) == 2, case
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "task.json" in err, (case, err)
    assert json.loads((run.path / "run.json").read_text())["status"] == "stopped"  # not marked failed
