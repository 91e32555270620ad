"""The run lifecycle in core: identities, statuses, the run's session (claim, heartbeat, events, the
ending, release), the events file, finding runs, how a run ends and how that is read back, and
resuming training and a search in this process (the detached process is tested via the CLI)."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.errors import TaskStopped, UserError
from cnn_tui.core.events import EpochEnd, FoldEnd, Notice, TaskFinished
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control, events_file, index, processes, steps
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import INTERRUPTED_MESSAGE, LOCK_FILE, Run, RunBusy, effective_status, read_run
from cnn_tui.core.runs.lifecycle import NO_ENDING, RunSession, ending_of
from cnn_tui.core.runs.results import read_ending


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- identities and statuses


def test_a_reused_pid_is_not_the_run(tmp_path):
    record = processes.identity()
    assert processes.is_same_process(record) is True
    reused = {**record, "pid_start": (record["pid_start"] or 0) + 1}  # same pid, another start time
    assert processes.is_same_process(reused) is False
    assert processes.signal_process(reused) is False  # never signalled
    assert processes.is_same_process({**record, "boot_id": "another-boot"}) is False
    assert processes.is_same_process({**record, "host": "elsewhere"}) is None


def test_a_running_record_of_a_dead_process_is_interrupted(tmp_path):
    run = Run.create(tmp_path, "train")
    assert effective_status(run.record) == "running"
    run.record["pid"] = _dead_pid()
    run.record["pid_start"] = None
    assert effective_status(run.record) == "interrupted"
    # another host: only the heartbeat can tell
    far = {**run.record, "host": "elsewhere", "heartbeat": 0}
    assert effective_status(far) == "interrupted"


def test_two_processes_never_run_one_folder(tmp_path):
    run = Run.create(tmp_path, "train")
    run.claim()
    try:
        with pytest.raises(RunBusy):
            Run.open(run.path).claim()
    finally:
        run.release()
    Run.open(run.path).claim()  # free again once released


def test_runs_created_in_the_same_second_get_their_own_folders(tmp_path):
    folders = {Run.create(tmp_path, "train").path for _ in range(5)}
    assert len(folders) == 5


# ---------------------------------------------------------------- the run's session


def _heartbeats_alive() -> int:
    return sum(t.name == "run-heartbeat" and t.is_alive() for t in threading.enumerate())


def _no_heartbeat_left() -> bool:
    deadline = time.monotonic() + 5
    while _heartbeats_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _heartbeats_alive() == 0


def _is_free(folder: Path) -> bool:
    """Whether the folder's lock can be taken (by another open file: as another process would)."""
    with open(folder / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def _finish(session: RunSession) -> None:
    session.end("finished", "done", 0, {"accuracy": 0.5})


def _user_error(session: RunSession) -> None:
    raise UserError("the training folder vanished")


def _bug(session: RunSession) -> None:
    raise RuntimeError("a bug")


def _stop(session: RunSession) -> None:
    raise TaskStopped("training stopped")


@pytest.mark.parametrize(("body", "raised", "status", "code", "message"), [
    (_finish, None, "finished", 0, "done"),
    (_user_error, UserError, "failed", 2, "the training folder vanished"),
    (_bug, RuntimeError, "failed", 1, None),
    (_stop, TaskStopped, "stopped", 130, "training stopped"),
])
def test_a_session_ends_the_run_and_lets_it_go_however_its_body_ends(tmp_path, body, raised, status, code, message):
    run = Run.create(tmp_path, "train")
    seen: list = []
    session = RunSession(run, "train", emit=seen.append, heartbeat_seconds=0.02)
    with pytest.raises(raised) if raised else contextlib.nullcontext():  # the session re-raises
        with session:
            assert not _is_free(run.path)  # claimed
            first = read_run(run.path)["heartbeat"]
            deadline = time.monotonic() + 5
            while read_run(run.path)["heartbeat"] == first and time.monotonic() < deadline:
                time.sleep(0.01)
            assert read_run(run.path)["heartbeat"] > first  # beating
            session.emit(Notice("working"))
            body(session)
    record = read_run(run.path)
    assert (record["status"], record["exit_code"]) == (status, code)
    if message is not None:
        assert record["message"] == message
    assert record["pid"] == os.getpid()
    assert _is_free(run.path) and _no_heartbeat_left()
    written = events_file.read_events(run.path)
    assert [type(e).__name__ for e in written] == ["Notice", "TaskFinished"] and written == seen
    assert (written[-1].status, written[-1].details["exit_code"]) == (status, code)
    beat = record["heartbeat"]
    time.sleep(0.1)
    assert read_run(run.path)["heartbeat"] == beat  # nothing beats after the end


def test_a_session_on_a_held_folder_is_refused_and_leaves_the_holder_alone(tmp_path):
    run = Run.create(tmp_path, "train")
    with RunSession(run, "train") as holder:
        with pytest.raises(RunBusy):
            with RunSession(Run.open(run.path), "train"):
                pass  # never entered
        assert read_run(run.path)["status"] == "running"
        holder.end("finished", "done", 0)
    assert read_run(run.path)["status"] == "finished" and _is_free(run.path)


def test_a_session_left_without_an_ending_is_failed_not_left_running(tmp_path):
    run = Run.create(tmp_path, "train")
    with RunSession(run, "train"):
        pass
    record = read_run(run.path)
    assert (record["status"], record["message"], record["exit_code"]) == ("failed", NO_ENDING, 1)
    assert _is_free(run.path)


def test_a_session_ends_once_and_counts_a_resume(tmp_path):
    run = Run.create(tmp_path, "train")
    with RunSession(run, "train") as session:
        session.end("stopped", "stopped after epoch 1", 130)
    seen: list = []
    with RunSession(Run.open(run.path), "train", resumed=True, emit=seen.append) as session:
        session.end("finished", "done", 0)
        session.end("failed", "too late", 1)  # changes nothing
    record = read_run(run.path)
    assert (record["status"], record["message"], record["resumed"]) == ("finished", "done", 1)
    assert [e.status for e in seen] == ["finished"]


# ---------------------------------------------------------------- the events file


def test_events_round_trip_and_a_half_written_line_is_left_out(tmp_path):
    writer = events_file.EventWriter(tmp_path)
    writer(EpochEnd(1, 3, {"loss": float("nan"), "accuracy": 0.5}, 1.25))
    writer(Notice("hello [bold]not markup[/]", "warning"))
    writer.close()
    with open(tmp_path / events_file.EVENTS_FILE, "a") as handle:
        handle.write('{"type": "EpochEnd", "epoch": 2, "ep')  # the writer was killed here
    events = events_file.read_events(tmp_path)
    assert events == [EpochEnd(1, 3, {"loss": None, "accuracy": 0.5}, 1.25), Notice("hello [bold]not markup[/]", "warning")]


def test_a_reader_returns_each_line_once_as_the_file_grows(tmp_path):
    reader = events_file.EventReader(tmp_path)
    assert reader.read() == []
    path = tmp_path / events_file.EVENTS_FILE
    path.write_text(events_file.encode(Notice("a")) + "\n" + events_file.encode(Notice("b"))[:10])
    assert reader.read() == [Notice("a")]
    with open(path, "a") as handle:
        handle.write(events_file.encode(Notice("b"))[10:] + "\n")
    assert reader.read() == [Notice("b")]
    assert reader.read() == []


def test_follow_replays_then_ends_when_the_writer_is_gone(tmp_path):
    writer = events_file.EventWriter(tmp_path)
    writer(Notice("before"))
    alive = threading.Event()
    alive.set()

    def later() -> None:
        writer(Notice("after"))
        writer.close()
        alive.clear()

    threading.Timer(0.2, later).start()
    seen = [e.text for e in events_file.follow(tmp_path, alive=alive.is_set, interval=0.02)]
    assert seen == ["before", "after"]


# ---------------------------------------------------------------- finding runs


def test_find_run_by_id_prefix_and_folder(tmp_path):
    a = tmp_path / "20260101-100000-train"
    b = tmp_path / "20260101-100000-tune"
    for folder in (a, b):
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "status": "finished"}))
    assert index.find_run("20260101-100000-tr", [tmp_path]) == a
    assert index.find_run(b.name, [tmp_path]) == b
    assert index.find_run(str(a), []) == a
    with pytest.raises(UserError, match="matches 2 runs"):
        index.find_run("20260101", [tmp_path])
    with pytest.raises(UserError, match="no run 'zzz'"):
        index.find_run("zzz", [tmp_path])


def test_list_runs_newest_first_with_differing_params_and_metrics(tmp_path):
    for i, (status, accuracy) in enumerate((("finished", 0.9), ("stopped", 0.8))):
        folder = tmp_path / f"2026010{i}-train"
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({
            "run_id": folder.name, "task": "train", "status": status, "started": f"2026-01-0{i + 1}T10:00:00",
            "seconds": 3.0, "details": {"final": {"accuracy": accuracy}}}))
        (folder / "hyper_params.json").write_text(json.dumps({"epochs": 7, "momentum": 0.9}))
    (tmp_path / "not-a-run").mkdir()
    runs = index.list_runs([tmp_path])
    assert [r.status for r in runs] == ["stopped", "finished"]
    assert runs[0].params == {"epochs": 7} and runs[0].metrics == {"accuracy": 0.8}


# ---------------------------------------------------------------- how a run ends


def test_every_exception_maps_to_one_status_and_exit_code():
    from cnn_tui.core.errors import DatasetError

    assert ending_of(TaskStopped("loading stopped")) == ("stopped", "loading stopped", 130)
    assert ending_of(DatasetError("no images", path="/x"))[::2] == ("failed", 2)
    assert ending_of(MemoryError())[::2] == ("failed", 2)
    assert ending_of(RuntimeError("bug"))[::2] == ("failed", 1)


def test_a_user_mistake_inside_a_run_ends_it_failed_with_the_reason(params_files, tmp_path):
    data_path, hyper_path = params_files()
    data = DataParams.load(data_path)
    run = control.prepare(TaskSpec("train"), data, HyperParams.load(hyper_path), parent=tmp_path / "runs")
    (tmp_path / "data" / "training").rename(tmp_path / "gone")  # the folder vanished after the start
    events: list = []
    with pytest.raises(UserError):
        control.run_here(run, TaskSpec.load(run.path), emit=events.append)
    record = read_run(run.path)
    assert record["status"] == "failed" and record["exit_code"] == 2 and record["message"]
    assert isinstance(events[-1], TaskFinished) and events[-1].status == "failed"


def test_how_a_run_ended_is_read_back_from_its_folder(tmp_path):
    run = Run.create(tmp_path, "train")
    (run.path / "history.csv").write_text("epoch,loss,accuracy\n1,0.9,0.5\n2,0.7,0.625\n")
    running = read_ending(run.path)
    assert (running.status, running.exit_code, running.label) == ("running", None, "training")
    assert running.metrics == {"loss": 0.7, "accuracy": 0.625}  # its last whole epoch, while it runs
    # the event says how it ended before run.json does
    event = TaskFinished("train", "stopped", "stopped after epoch 2", {"exit_code": 130})
    told = read_ending(run.path, finished=event)
    assert (told.status, told.exit_code) == ("stopped", 130)
    run.finish("finished", "2 epochs", exit_code=0, final={"accuracy": 0.75, "loss": 0.5})
    ended = read_ending(run.path, finished=event)  # run.json has it now: the event is not needed
    assert (ended.status, ended.message, ended.exit_code) == ("finished", "2 epochs", 0)
    assert ended.metrics == {"accuracy": 0.75, "loss": 0.5} and ended.seconds is not None
    assert ended.run_id == run.path.name and ended.task == "train"


def test_a_killed_run_reads_back_interrupted_with_the_exit_code_of_a_failure(tmp_path):
    run = Run.create(tmp_path, "tune")
    run.record.update(pid=_dead_pid(), pid_start=None, message="stopped after fit 2")  # a resumed run, then killed
    run.write()
    ending = read_ending(run.path)
    assert (ending.status, ending.message, ending.exit_code) == ("interrupted", INTERRUPTED_MESSAGE, 1)
    assert ending.label == "tuning"
    nothing = read_ending(tmp_path / "not-a-run")
    assert (nothing.status, nothing.task, nothing.exit_code, nothing.record) == ("failed", "?", 1, {})


# ---------------------------------------------------------------- resuming in this process


def _history_epochs(folder: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (folder / "history.csv").read_text().splitlines()[1:]]


def test_training_stopped_then_resumed_trains_each_epoch_once(params_files, tmp_path):
    data_path, hyper_path = params_files(per_class=16, hyper={"epochs": 4, "batch_size": 8})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train", validate=0.25), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()

    def stop_after_two(event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 2:
            stop.set()

    outcome = control.run_here(run, TaskSpec.load(run.path), emit=stop_after_two, stop=stop)
    assert outcome.status == "stopped" and read_run(run.path)["exit_code"] == 130
    assert _history_epochs(run.path) == [1, 2]
    resumed, spec = control.prepare_resume(run.path)
    events: list = []
    outcome = control.run_here(resumed, spec, emit=events.append)
    assert outcome.status == "finished", outcome.message
    assert _history_epochs(run.path) == [1, 2, 3, 4]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [3, 4]
    record = read_run(run.path)
    assert record["status"] == "finished" and record["resumed"] == 1
    with pytest.raises(UserError, match="it finished"):
        control.prepare_resume(run.path)


def test_a_stopped_search_resumes_without_training_its_finished_fits_again(params_files, tmp_path, monkeypatch):
    from cnn_tui.core.training import fit

    data_path, hyper_path = params_files(per_class=9, hyper={"num_filters": [4, 6], "epochs": 1})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("tune", cv=2), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()

    def stop_after_two(event) -> None:
        if isinstance(event, FoldEnd) and event.fits_done == 2:
            stop.set()

    outcome = control.run_here(run, TaskSpec.load(run.path), emit=stop_after_two, stop=stop)
    assert outcome.status == "stopped"
    first = [e.row for e in events_file.read_events(run.path) if isinstance(e, FoldEnd)]
    assert len(first) == 2
    trained = []
    real = fit.train
    monkeypatch.setattr(fit, "train", lambda *a, **kw: trained.append(a) or real(*a, **kw))
    resumed, spec = control.prepare_resume(run.path)
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished", outcome.message
    assert len(trained) == 2  # only the two fits not finished before the stop were trained
    rows = outcome.tuning.result.rows
    assert len(rows) == 4 and sorted((r["num_filters"], r["fold"]) for r in rows) == [(4, 1), (4, 2), (6, 1), (6, 2)]
    kept = {(r["num_filters"], r["split"]): r["accuracy"] for r in first}
    assert all(kept.get((r["num_filters"], r["split"]), r["accuracy"]) == r["accuracy"] for r in rows)
    assert len((run.path / "tuning_results.csv").read_text().splitlines()) == 5


def test_stop_refuses_a_run_that_is_not_running_and_another_users_run(tmp_path, monkeypatch):
    run = Run.create(tmp_path, "train")
    run.finish("finished", "done")
    with pytest.raises(UserError, match="not running"):
        control.stop(run.path)
    other = Run.create(tmp_path, "train")
    with pytest.raises(UserError, match="not running"):  # no process holds its lock: nothing to signal
        control.stop(other.path)
    other.claim()
    try:
        monkeypatch.setattr(os, "getuid", lambda: other.record["uid"] + 1)  # the folder is another user's
        with pytest.raises(UserError, match="another user"):
            control.stop(other.path)
    finally:
        other.release()


def test_a_run_stopped_before_its_first_epoch_saves_no_model(params_files, tmp_path):
    data_path, hyper_path = params_files()
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train"), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()

    def stop_at_start(event) -> None:  # asked to stop as loading ended: the first batch sees it
        if type(event).__name__ == "TrainingStarted":
            stop.set()

    outcome = control.run_here(run, TaskSpec.load(run.path), emit=stop_at_start, stop=stop)
    assert outcome.status == "stopped" and outcome.train.result.epochs_done == 0
    assert not (run.path / "model.keras").exists()


def test_a_resume_starts_where_the_model_file_says_when_the_history_is_ahead(params_files, tmp_path):
    """A kill between the checkpoint's two writes leaves history.csv one epoch ahead of model.keras."""
    data_path, hyper_path = params_files(hyper={"epochs": 3})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train"), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()
    control.run_here(run, TaskSpec.load(run.path), stop=stop,
                         emit=lambda e: stop.set() if isinstance(e, EpochEnd) and e.epoch == 1 else None)
    history = run.path / "history.csv"
    lines = history.read_text().splitlines()
    history.write_text("\n".join([*lines, lines[-1].replace("1,", "2,", 1)]) + "\n")  # epoch 2 written, model not
    resumed, spec = control.prepare_resume(run.path)
    events: list = []
    control.run_here(resumed, spec, emit=events.append)
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [2, 3]
    assert _history_epochs(run.path) == [1, 2, 3]


def test_a_run_stopped_before_its_first_epoch_resumes_from_the_start(params_files, tmp_path):
    data_path, hyper_path = params_files()
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train"), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()
    stop.set()
    with pytest.raises(Exception, match="loading stopped"):
        control.run_here(run, TaskSpec.load(run.path), stop=stop)
    assert read_run(run.path)["status"] == "stopped"
    resumed, spec = control.prepare_resume(run.path)
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished" and _history_epochs(run.path) == [1, 2]


def test_a_stopped_hyperband_search_resumes_and_its_promoted_fits_go_on(params_files, tmp_path, monkeypatch):
    from cnn_tui.core.training import fit

    data_path, hyper_path = params_files(per_class=6, hyper={"num_filters": [4, 6, 8], "epochs": 3})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("tune", cv=2, strategy="hyperband"), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()

    def stop_after_three(event) -> None:
        if isinstance(event, FoldEnd) and event.fits_done == 3:
            stop.set()

    outcome = control.run_here(run, TaskSpec.load(run.path), emit=stop_after_three, stop=stop)
    assert outcome.status == "stopped"
    first = [e.row for e in events_file.read_events(run.path) if isinstance(e, FoldEnd)]
    assert len(first) == 3 and len(list((run.path / ".work" / "models").glob("*.npz"))) == 3  # networks' states
    started_at = []
    real = fit.train
    monkeypatch.setattr(fit, "train", lambda *a, **kw: started_at.append(kw["initial_epoch"]) or real(*a, **kw))
    resumed, spec = control.prepare_resume(run.path)
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished", outcome.message
    rows = outcome.tuning.result.rows
    assert [sum(r["rung"] == k for r in rows) for k in (0, 1)] == [6, 2]  # 3 combinations, then the best, x 2 folds
    # round 1's three unfinished fits from scratch; round 2's two go on from their saved states
    assert started_at == [0, 0, 0, 1, 1]
    kept = {(r["num_filters"], r["split"]): r["accuracy"] for r in first}
    assert all(kept.get((r["num_filters"], r["split"]), r["accuracy"]) == r["accuracy"] for r in rows if r["rung"] == 0)
    assert {r["epochs_done"] for r in rows if r["rung"] == 1} == {3}
    assert not (run.path / ".work").exists()  # a finished search cleans its work folder


def test_a_search_resumed_after_its_params_were_edited_checks_every_combination_still_fits(params_files, tmp_path):
    """Resuming re-reads the folder's hyper_params.json; a combination that no longer fits the images is
    refused in one line before anything runs, as a new search's would be."""
    from cnn_tui.core.errors import ParamsError

    data_path, hyper_path = params_files(per_class=4, hyper={"num_filters": [4, 6], "epochs": 1})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("tune", cv=2), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()
    stop.set()  # stopped while loading: a resumable search that trained nothing
    with pytest.raises(TaskStopped):
        control.run_here(run, TaskSpec.load(run.path), stop=stop)
    assert read_run(run.path)["status"] == "stopped"
    edited = json.loads(run.file("hyper_params.json").read_text())
    edited.update(architecture="cnn", blocks=[2, 5])  # 12 px halved five times is nothing
    run.file("hyper_params.json").write_text(json.dumps(edited))
    with pytest.raises(ParamsError, match="blocks 5 is too many for image_size 12"):
        control.prepare_resume(run.path)
    assert TaskSpec.load(run.path).resume is False  # nothing was marked for a resume


def test_a_resumed_run_keeps_the_best_epoch_of_the_whole_training(params_files, tmp_path):
    """Early stopping's best survives a stop and resume: the kept epoch is the best of every epoch
    in history.csv, its weights are the model saved, and train_seconds counts both parts."""
    data_path, hyper_path = params_files(per_class=16, hyper={"epochs": 5, "batch_size": 8, "patience": 10})
    rng = np.random.default_rng(0)
    for image in sorted((tmp_path / "data" / "training").rglob("*.png")):  # noise: it overfits, the best is early
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(image)
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train", validate=0.25), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()
    control.run_here(run, TaskSpec.load(run.path), stop=stop,
                     emit=lambda e: stop.set() if isinstance(e, EpochEnd) and e.epoch == 2 else None)
    first_seconds = read_run(run.path)["details"]["train_seconds"]
    # stopped: model.keras is the kept epoch (what the run's figures describe), the last epoch waits apart
    stopped = read_run(run.path)["details"]
    assert NetModel.load(run.path / "resume.keras").epochs_done == stopped["epochs_done"] == 2
    kept_when_stopped = NetModel.load(run.path / "model.keras")
    best_when_stopped = NetModel.load(run.path / "model.keras")
    best_when_stopped.keras_model.load_weights(run.path / "best.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(kept_when_stopped.keras_model.get_weights(),
                                                    best_when_stopped.keras_model.get_weights()))
    resumed, spec = control.prepare_resume(run.path)
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished", outcome.message
    with open(run.path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    val_loss = [float(row["val_loss"]) for row in rows]
    best = int(np.argmin(val_loss)) + 1
    details = read_run(run.path)["details"]
    assert details["best_epoch"] == best, val_loss
    assert not (run.path / "resume.keras").exists()  # the resumed epochs' checkpoints took over
    assert details["train_seconds"] >= sum(float(row["seconds"]) for row in rows) - 0.01 > first_seconds
    kept = NetModel.load(run.path / "model.keras").keras_model.get_weights()
    best_file = NetModel.load(run.path / "model.keras")
    best_file.keras_model.load_weights(run.path / "best.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(kept, best_file.keras_model.get_weights()))


def test_two_runs_from_one_start_model_train_alike(params_files, tmp_path):
    """A run from a given start model (the TUI's) is seeded before its fit, as a run that builds
    its model is: the same start model and params give the same history."""
    data_path, hyper_path = params_files(hyper={"epochs": 2, "batch_size": 8})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    start = steps.new_model(data, hyper, steps.load_training_set(data))
    losses = []
    for _ in range(2):
        run = control.prepare(TaskSpec("train", validate=0.25), data, hyper, parent=tmp_path / "runs",
                              start_model=start)
        control.run_here(run, TaskSpec.load(run.path))
        with open(run.path / "history.csv", newline="") as handle:
            losses.append([(row["loss"], row["val_loss"]) for row in csv.DictReader(handle)])
    assert losses[0] == losses[1]


def test_an_evaluation_of_a_runs_model_gives_that_run_its_test_accuracy(tmp_path):
    """The TUI's e after a training is a run of its own that records ``model_run``: the Runs view and
    Compare show its test accuracy with the training (issue 20.13); a run's own figure is kept."""
    trained = Run.create(tmp_path, "train")
    trained.finish("finished", "2 epochs", exit_code=0, final={"accuracy": 0.75})
    for accuracy in (0.5, 0.625):  # two evaluations of its model: the newest counts
        evaluation = Run.create(tmp_path, "evaluate")
        evaluation.add_details(model_run=str(trained.path))
        evaluation.finish("finished", "evaluated", exit_code=0, accuracy=accuracy)
        time.sleep(1.05)  # started is recorded to the second
    pipeline = Run.create(tmp_path, "pipeline")
    pipeline.finish("finished", "done", exit_code=0, final={"accuracy": 0.9}, accuracy=0.8)
    other = Run.create(tmp_path, "evaluate")
    other.add_details(model_run=str(pipeline.path))
    other.finish("finished", "evaluated", exit_code=0, accuracy=0.1)
    runs = {s.run_dir: s for s in index.list_runs([tmp_path])}
    assert runs[str(trained.path)].metrics["test_accuracy"] == 0.625
    assert runs[str(pipeline.path)].metrics["test_accuracy"] == 0.8  # its own evaluation, not a later one
    assert index.linked_test_accuracy(trained.path) == 0.625
    assert index.linked_test_accuracy(pipeline.path) == 0.8
