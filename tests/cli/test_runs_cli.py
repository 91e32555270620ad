"""Runs outlive the terminal: detach, list, attach, stop, resume, SIGKILL and nohup, through the real CLI.

Every run here is a real process on tiny data. Nothing waits a fixed time: each test polls the run's
files (run.json, history.csv, events.jsonl) with a generous deadline, so a slow, busy 2-core machine
only makes them slower.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cnn_tui.cli import main
from cnn_tui.core.runs import processes
from cnn_tui.core.runs.events_file import read_events
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import ENDED, Run, effective_status, read_run

from tests_support import TINY_HYPER

DEADLINE = 180.0  # seconds for anything to happen: TensorFlow alone takes ~10 s to import on a busy machine
COMMAND_TIMEOUT = 300.0


# ---------------------------------------------------------------- helpers


def cli(*args: object, cwd: Path, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_tui", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def cli_json(*args: object, cwd: Path) -> tuple[int, object, str]:
    done = cli(*args, "--json", cwd=cwd)
    try:
        payload = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not JSON on stdout (exit {done.returncode}):\n{done.stdout}\n{done.stderr}") from None
    return done.returncode, payload, done.stderr


def wait_until(check, what: str, timeout: float = DEADLINE, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(interval)


def status_of(run_dir: Path) -> str:
    record = read_run(run_dir)
    return effective_status(record) if record else "missing"


def history(run_dir: Path) -> list[dict[str, str]]:
    try:
        with open(run_dir / "history.csv", newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fold_ends(run_dir: Path) -> int:
    return sum(1 for e in read_events(run_dir) if type(e).__name__ == "FoldEnd")


def epoch_numbers(stderr: str) -> list[int]:
    """The epoch numbers of the ``epoch   3/12  loss ...`` lines, in order."""
    return [int(line.split()[1].split("/")[0]) for line in stderr.splitlines() if line.startswith("epoch ")]


def listed(cwd: Path, *extra: object) -> dict[str, dict]:
    code, runs, err = cli_json("runs", *extra, cwd=cwd)
    assert code == 0 and isinstance(runs, list), err
    return {r["run_id"]: r for r in runs}


def error_line(stderr: str) -> str:
    """The one line a user mistake prints (nothing else, no traceback)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def detached(tmp_path):
    """Start runs with ``--detach``; whatever still runs when the test ends is killed (by its recorded identity)."""
    started: list[dict] = []

    def start(*args: object, cwd: Path = tmp_path) -> tuple[dict, float]:
        began = time.monotonic()
        code, payload, err = cli_json(*args, "--detach", cwd=cwd)
        took = time.monotonic() - began
        assert code == 0, err
        record = read_run(Path(payload["run_dir"])) or {}
        started.append(record)
        return payload, took

    yield start
    for record in started:
        if processes.is_same_process(record):
            processes.signal_process(record, signal.SIGKILL)


def faint_params(root: Path, classes: int = 3, per_class: int = 60, size: int = 12, **hyper) -> tuple[Path, Path]:
    """Images whose class block is only 55 grey levels above a noisy background: not separable at a
    glance (about 50 % after the first epoch at this learning rate, 100 % after four), so an accuracy
    reached after a resume says the resumed run went on from its weights."""
    from PIL import Image

    rng = np.random.default_rng(7)
    for folder, count in (("training", per_class), ("testing", 10)):
        for label in range(classes):
            target = root / "data" / folder / str(label)
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = rng.integers(0, 160, (size, size)).astype(np.int16)
                cell = size // 3
                row, col = divmod(label, 3)
                image[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell] += 55
                Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "L").save(target / f"img_{i:03d}.png")
    inputs = root / "app_input"
    inputs.mkdir(exist_ok=True)
    data = inputs / "data.json"
    data.write_text(json.dumps({"num_classes": classes, "train_dir": "../data/training", "test_dir": "../data/testing",
                                "image_size": size, "result_dir": "../results"}))
    hyper_path = inputs / "hyper.json"
    hyper_path.write_text(json.dumps({**TINY_HYPER, "init_rate": 0.005, "decay_steps": 1000, "drop_out": 0.0,
                                      "batch_size": 1, **hyper}))
    return data, hyper_path


class LineReader:
    """Reads a child's stream on a thread, so the test can poll its lines without blocking."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def epochs(self) -> int:
        numbers = epoch_numbers(self.text())
        return numbers[-1] if numbers else 0


# ---------------------------------------------------------------- help


def test_help_names_the_run_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("runs", "attach", "stop", "resume"):
        assert f"    {name}" in out
    assert "--detach" in out and "cnn-tui attach RUN" in out
    for name in ("train", "tune", "pipeline"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--detach" in capsys.readouterr().out


# ---------------------------------------------------------------- detach, runs


def test_detached_train_returns_at_once_and_runs_lists_it_running_then_finished(tmp_path, params_files, detached):
    data, hyper = params_files(per_class=40, hyper={"epochs": 8, "batch_size": 2})
    payload, took = detached("train", "--data", data, "--hyper", hyper)
    run_dir = Path(payload["run_dir"])
    assert payload["command"] == "train" and payload["exit_code"] == 0
    assert payload["run_id"] == run_dir.name and isinstance(payload["pid"], int)
    assert run_dir.parent.resolve() == (tmp_path / "results").resolve()
    # it returned without waiting for TensorFlow, the images or the training
    assert took < 30, f"--detach took {took:.1f}s"
    record = read_run(run_dir)
    assert record["pid"] == payload["pid"] and record["pid"] != os.getpid()
    assert {"task.json", "data_params.json", "hyper_params.json"} <= {p.name for p in run_dir.iterdir()}

    now = listed(tmp_path)[payload["run_id"]]  # TensorFlow alone keeps it running for seconds more
    assert now["status"] == "running" and now["task"] == "train" and now["run_dir"] == str(run_dir)
    assert now["started"] and now["pid"] == payload["pid"]

    wait_until(lambda: status_of(run_dir) in ENDED, "the run to end")
    then = listed(tmp_path)[payload["run_id"]]
    assert then["status"] == "finished" and then["exit_code"] == 0, then
    assert then["metrics"]["accuracy"] > 0.5 and then["params"]["epochs"] == 8
    assert (run_dir / "model.keras").stat().st_size > 0
    assert [row["epoch"] for row in history(run_dir)] == [str(i) for i in range(1, 9)]
    assert "finished" in (run_dir / "run.log").read_text()  # the detached process's own output


def test_runs_table_and_an_empty_list(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    other = tmp_path / "elsewhere"
    run = Run.create(other, "train")
    run.finish("finished", "trained 2 epochs", exit_code=0, final={"accuracy": 0.875})
    assert main(["runs", "--results", str(other)]) == 0
    out = capsys.readouterr().out
    assert run.path.name in out and "finished" in out and "acc 87.5%" in out


def test_runs_shows_the_last_system_sample_of_a_running_run(tmp_path, monkeypatch, capsys):
    from cnn_tui.core.events import SystemSample
    from cnn_tui.core.runs.events_file import EventWriter

    monkeypatch.chdir(tmp_path)
    running, ended = Run.create(tmp_path / "results", "train"), Run.create(tmp_path / "results", "train")
    gpu = {"index": 0, "name": "NVIDIA H100", "utilization": 87, "memory_used_mb": 10444.8,
           "memory_total_mb": 81920.0, "temperature_c": 64, "power_w": 250.0}
    for run in (running, ended):
        writer = EventWriter(run.path)
        writer(SystemSample([gpu], 12.0, 2048.0, 8192.0))
        writer(SystemSample([{**gpu, "utilization": 91}], 43.0, 5222.4, 131072.0))  # the last one counts
        writer.close()
    ended.finish("finished", "trained 2 epochs", exit_code=0)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert f"{running.path.name}: GPU0 91% 10.2/80 GB 64°C 250 W · CPU 43% · RAM 5.1/128 GB" in out
    assert f"{ended.path.name}:" not in out  # an ended run has no machine to show
    assert main(["runs", "--json"]) == 0
    rows = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[running.path.name]["system"] == {"gpus": [{**gpu, "utilization": 91}], "cpu_percent": 43.0,
                                                 "memory_used_mb": 5222.4, "memory_total_mb": 131072.0}
    assert rows[ended.path.name]["system"] is None


# ---------------------------------------------------------------- stop, resume


def test_stop_then_resume_trains_every_epoch_once_and_ends_like_an_uninterrupted_run(tmp_path, detached):
    data, hyper = faint_params(tmp_path, epochs=20)
    # the same run without a stop, for comparison (same seed), alongside
    baseline = subprocess.Popen([sys.executable, "-m", "cnn_tui", "train", "--data", str(data), "--hyper", str(hyper),
                                 "--out", str(tmp_path / "baseline"), "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        payload, _ = detached("train", "--data", data, "--hyper", hyper)
        run_id, run_dir = payload["run_id"], Path(payload["run_dir"])
        wait_until(lambda: len(history(run_dir)) >= 2, "two whole epochs")
        code, stopped, err = cli_json("stop", run_id, cwd=tmp_path)
        assert code == 0, err
        assert stopped["status"] == "stopped" and stopped["run_exit_code"] == 130, stopped
        done = len(history(run_dir))
        assert 2 <= done < 20
        record = read_run(run_dir)
        assert record["status"] == "stopped" and record["exit_code"] == 130
        assert listed(tmp_path)[run_id]["status"] == "stopped"

        replay = cli("attach", run_id, cwd=tmp_path)  # an ended run: replayed, and its exit code
        assert replay.returncode == 130, replay.stderr
        assert epoch_numbers(replay.stderr) == list(range(1, done + 1))

        code, resumed, err = cli_json("resume", run_id, cwd=tmp_path)
        assert code == 0, err
        assert resumed["status"] == "finished" and resumed["epochs_done"] == 20 and resumed["resumed"] == 1
        assert resumed["run_dir"] == str(run_dir)
        assert f"resuming at epoch {done + 1} of 20" in err
        assert epoch_numbers(err) == list(range(done + 1, 21))  # the resumed process trains only the rest
        rows = history(run_dir)
        assert [row["epoch"] for row in rows] == [str(i) for i in range(1, 21)]  # each epoch once
        record = read_run(run_dir)
        assert record["status"] == "finished" and record["exit_code"] == 0 and record["resumed"] == 1

        accuracy = [float(row["accuracy"]) for row in rows]
        assert accuracy[0] < 0.8, "the data should not be learnt in one epoch"
        assert accuracy[done] > 0.85, accuracy  # went on from its weights: a fresh start would be back near epoch 1's
        out, err = baseline.communicate(timeout=COMMAND_TIMEOUT)
        assert baseline.returncode == 0, err
        uninterrupted = json.loads(out)
        assert abs(uninterrupted["final"]["accuracy"] - resumed["final"]["accuracy"]) <= 0.02, (uninterrupted["final"],
                                                                                               resumed["final"])
    finally:
        if baseline.poll() is None:
            baseline.kill()
            baseline.communicate()


def test_a_killed_run_is_interrupted_and_resumes_from_its_last_whole_epoch(tmp_path, detached):
    data, hyper = faint_params(tmp_path, epochs=12)
    payload, _ = detached("train", "--data", data, "--hyper", hyper)
    run_id, run_dir = payload["run_id"], Path(payload["run_dir"])
    wait_until(lambda: len(history(run_dir)) >= 2, "two whole epochs")
    record = read_run(run_dir)
    assert processes.signal_process(record, signal.SIGKILL)  # as the OOM killer or a reboot would
    wait_until(lambda: processes.is_same_process(record) is False, "the process to be gone")
    # the resume point is the model file's last whole epoch: history.csv is written just before it, so a
    # kill between the two writes leaves history one epoch ahead (that epoch is trained again, once)
    from cnn_tui.core.models.model import inspect_archive

    done = inspect_archive(run_dir / "model.keras")["epochs_done"]
    assert 1 <= done < 12 and len(history(run_dir)) in (done, done + 1)
    now = listed(tmp_path)[run_id]
    assert now["status"] == "interrupted" and "process ended" in now["message"]

    code, resumed, err = cli_json("resume", run_id, cwd=tmp_path)
    assert code == 0, err
    assert resumed["status"] == "finished" and resumed["epochs_done"] == 12
    assert f"resuming at epoch {done + 1} of 12" in err
    assert epoch_numbers(err) == list(range(done + 1, 13))
    assert [row["epoch"] for row in history(run_dir)] == [str(i) for i in range(1, 13)]
    assert listed(tmp_path)[run_id]["status"] == "finished"


def test_a_stopped_search_resumes_with_its_finished_fits_kept(tmp_path, detached):
    data, hyper = faint_params(tmp_path, epochs=3, num_units=[8, 16])
    payload, _ = detached("tune", "--data", data, "--hyper", hyper, "--cv", "3")
    run_id, run_dir = payload["run_id"], Path(payload["run_dir"])
    wait_until(lambda: fold_ends(run_dir) >= 2, "two finished fits")
    code, stopped, err = cli_json("stop", run_id, cwd=tmp_path)
    assert code == 0 and stopped["status"] == "stopped", (stopped, err)
    before = csv_rows(run_dir / "tuning_results.csv")
    assert 2 <= len(before) < 6

    code, resumed, err = cli_json("resume", run_id, cwd=tmp_path)
    assert code == 0, err
    assert resumed["status"] == "finished" and len(resumed["folds"]) == 6 and len(resumed["table"]) == 2
    assert f"resuming: {len(before)} finished fit(s) kept" in err
    after = csv_rows(run_dir / "tuning_results.csv")
    keys = [(row["num_units"], row["fold"]) for row in after]
    assert sorted(keys) == sorted((units, str(fold)) for units in ("8", "16") for fold in (1, 2, 3))  # each fit once
    by_key = {(row["num_units"], row["fold"]): row for row in after}
    for row in before:  # kept as they were, not trained again (a new fit would take its own time)
        kept = by_key[(row["num_units"], row["fold"])]
        assert (kept["fit_seconds"], kept["accuracy"], kept["loss"]) == (row["fit_seconds"], row["accuracy"], row["loss"])
    assert read_run(run_dir)["status"] == "finished"


# ---------------------------------------------------------------- attach


def test_attach_follows_a_running_run_ctrl_c_detaches_and_an_ended_run_replays(tmp_path, params_files, detached):
    data, hyper = params_files(per_class=40, hyper={"epochs": 30, "batch_size": 2})
    payload, _ = detached("train", "--data", data, "--hyper", hyper)
    run_id, run_dir = payload["run_id"], Path(payload["run_dir"])

    watcher = subprocess.Popen([sys.executable, "-m", "cnn_tui", "attach", run_id], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = LineReader(watcher.stderr)
        wait_until(lambda: lines.epochs() >= 1 or watcher.poll() is not None, "an epoch line from attach")
        assert watcher.poll() is None, lines.text()
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=60) == 0, lines.text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert f"detached; the run goes on: cnn-tui attach {run_id}" in lines.text()
    assert status_of(run_dir) == "running"  # Ctrl-C left the run alone

    follow = cli("attach", run_id, "--results", tmp_path / "results", cwd=tmp_path.parent)
    assert follow.returncode == 0, follow.stderr
    assert epoch_numbers(follow.stderr) == list(range(1, 31))  # the replay, then the rest as it came
    assert follow.stderr.strip().splitlines()[-1] == f"run {run_id} finished: trained 30 epochs"
    assert read_run(run_dir)["status"] == "finished"

    code, replay, err = cli_json("attach", run_id, cwd=tmp_path)
    assert code == 0 and replay["status"] == "finished" and replay["run_exit_code"] == 0
    assert f"run {run_id} (train, finished)" in err.splitlines()[0]
    assert epoch_numbers(err) == list(range(1, 31))


# ---------------------------------------------------------------- signals


def _ignore_sighup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does before it starts the command


def test_a_foreground_run_under_nohup_survives_the_hangup_and_stops_on_sigterm(tmp_path, params_files):
    data, hyper = params_files(per_class=40, hyper={"epochs": 300, "batch_size": 4})
    proc = subprocess.Popen([sys.executable, "-m", "cnn_tui", "train", "--data", str(data), "--hyper", str(hyper),
                             "--json"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sighup)
    try:
        lines = LineReader(proc.stderr)
        wait_until(lambda: lines.epochs() >= 1 or proc.poll() is not None, "the first epoch")
        proc.send_signal(signal.SIGHUP)
        hangup = lines.epochs()
        wait_until(lambda: lines.epochs() >= hangup + 2 or proc.poll() is not None, "two epochs after the hangup")
        assert proc.poll() is None, lines.text()  # still training
        assert "SIGHUP" not in lines.text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=COMMAND_TIMEOUT) == 130, lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    payload = json.loads(proc.stdout.read())
    assert payload["status"] == "stopped" and payload["epochs_done"] >= hangup + 2
    assert read_run(Path(payload["run_dir"]))["status"] == "stopped"
    assert "SIGTERM: stopping after the current batch" in lines.text()


# ---------------------------------------------------------------- user mistakes


@pytest.fixture
def some_runs(tmp_path, monkeypatch):
    """Run folders as the core leaves them (no training needed): two finished in the same second, one failed,
    one stopped evaluation."""
    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "results"
    made = {}
    for name, task, status, code in (("finished", "train", "finished", 0), ("twin", "train", "finished", 0),
                                     ("failed", "train", "failed", 1), ("evaluation", "evaluate", "stopped", 130)):
        run = Run.create(parent, task)
        TaskSpec(task).save(run.path)
        run.finish(status, f"{status} on purpose", exit_code=code)
        made[name] = run.path.name
    return made


def _mistake(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (argv, out, err)
    return error_line(err)


def test_stop_attach_resume_of_runs_they_cannot_use_exit_2_with_one_line(capsys, some_runs):
    prefix = os.path.commonprefix(list(some_runs.values()))
    for command in ("stop", "attach", "resume"):
        assert "no run 'nope' in" in _mistake(capsys, command, "nope")
        assert f"{prefix!r} matches 4 runs" in _mistake(capsys, command, prefix)
    finished = some_runs["finished"]
    assert _mistake(capsys, "stop", finished) == f"error: run {finished} is not running (it is finished)"
    assert _mistake(capsys, "resume", finished) == f"error: cannot resume run {finished}: it finished"
    assert "it failed (failed on purpose)" in _mistake(capsys, "resume", some_runs["failed"])
    assert "a evaluate run is not resumable" in _mistake(capsys, "resume", some_runs["evaluation"])
    assert main(["attach", finished]) == 0  # an ended run replays, with its exit code
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"run {finished} finished: finished on purpose"
    assert main(["attach", some_runs["evaluation"]]) == 130
    capsys.readouterr()


def test_another_users_run_is_refused_and_never_signalled(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    run = Run.create(tmp_path / "results", "train")
    try:
        run.claim()  # live: its lock is held
        run.record.update(processes.identity(sleeper.pid))
        run.write()
        monkeypatch.setattr(os, "getuid", lambda: run.record["uid"] + 1)  # the folder is another user's
        assert "belongs to another user" in _mistake(capsys, "stop", run.path.name)
        assert sleeper.poll() is None
    finally:
        run.release()
        sleeper.kill()
        sleeper.wait()


def test_a_mistake_in_a_subprocess_has_no_traceback(tmp_path):
    done = cli("stop", "nope", "--results", tmp_path / "results", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert error_line(done.stderr).startswith("error: no run 'nope' in ")
    done = cli("attach", "nope", "--json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["exit_code"] == 2
