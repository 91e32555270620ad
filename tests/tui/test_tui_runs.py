"""The main screen as a client of runs made elsewhere (the CLI, an earlier TUI): it says at startup that
runs are running, the Runs view (7) lists them, Enter follows a running run into the views (replayed,
then live; x stops it) or loads an ended run's results and model, k stops a run after asking."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.tui.screens.confirm import ConfirmScreen

from tui_helpers import logged, make_app, run_record, status, table, text_of, wait_for, wait_idle, wait_run_ended

SMALL = dict(classes=3, per_class=12, test_per_class=6, size=12)


def params(params_files, **hyper):
    data_path, hyper_path = params_files(**SMALL, hyper=hyper)
    return data_path, hyper_path, DataParams.load(data_path), HyperParams.load(hyper_path)


def launch_elsewhere(data: DataParams, hyper: HyperParams, task: str = "train") -> Path:
    """What ``cnn-tui train --detach`` does: a run process of its own, not the app's."""
    spec = TaskSpec(task)
    run = control.prepare(spec, data, hyper, command=f"cnn-tui {task} --detach")
    proc = control.launch(run)
    threading.Thread(target=proc.wait, daemon=True).start()  # reaped
    return run.path


async def wait_epochs(run_dir: Path, epochs: int, timeout: float = 120) -> None:
    history = run_dir / "history.csv"
    deadline = time.monotonic() + timeout
    while not (history.exists() and len(history.read_text().splitlines()) > epochs):
        assert time.monotonic() < deadline, f"no {epochs} epoch(s) in {timeout}s"
        await asyncio.sleep(0.2)


async def open_runs_view(pilot, rows: int) -> object:
    app = pilot.app
    await pilot.press("7")
    view = app.main.view("runs")
    await wait_for(pilot, lambda: view.table.row_count == rows, timeout=30, what=f"{rows} run(s) listed")
    assert app.main.query_one("#views").active == "runs" and app.focused is view.table
    return view


async def test_a_run_started_elsewhere_is_announced_followed_and_stopped(params_files, in_tmp):
    data_path, hyper_path, data, hyper = params(params_files, epochs=400, batch_size=4)
    run = launch_elsewhere(data, hyper)
    await wait_epochs(run, 1)
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 36)) as pilot:
        main = app.main
        await wait_for(pilot, lambda: "1 run is running: 7 opens Runs" in logged(app), timeout=30,
                       what="the startup notice")
        await open_runs_view(pilot, 1)
        await pilot.press("enter")  # follow it: the epochs so far are replayed, then new ones come
        await wait_for(pilot, lambda: table(app, "#epoch-table").row_count >= 2, timeout=60, what="epochs")
        assert main.query_one("#views").active == "training" and main.session.busy == "training"
        assert main.session.run_dir == run and main.check_action("run", ("stop",)) is True
        assert "Training on all training images: 400 epochs, batch 4, 36 images" in text_of(app, "#training-title")
        await pilot.press("x")  # stops the run it follows, as one it started
        await wait_idle(pilot, timeout=60)
        record = run_record(run)
        assert record["status"] == "stopped" and record["command"] == "cnn-tui train --detach"
        done = record["details"]["epochs_done"]
        assert table(app, "#epoch-table").row_count == done  # every whole epoch, none twice
        assert len(main.session.history["loss"]) == done
        assert main.session.model.source == run / "model.keras"
        assert main.session.model_note == f"trained {done} epochs of 400 (stopped)"
        assert status(app).startswith(f"stopped by the user after {done} of 400 epochs")
        assert main.session.busy is None and main.check_action("run", ("train",)) is None  # usable: needs l, i first


async def test_an_ended_run_opens_into_the_views_and_its_model_evaluates(params_files, in_tmp):
    data_path, hyper_path, data, hyper = params(params_files, epochs=2)
    spec = TaskSpec("pipeline")
    run = control.prepare(spec, data, hyper, command="cnn-tui pipeline")
    control.run_here(run, spec)  # train + evaluate, in this process, before the app starts
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await open_runs_view(pilot, 1)
        await pilot.press("enter")
        await wait_idle(pilot)
        assert main.query_one("#views").active == "evaluation"
        assert table(app, "#epoch-table").row_count == 2
        assert len(main.query_one("#accuracy-chart").history["accuracy"]) == 2
        assert text_of(app, "#training-title").startswith("test accuracy")  # the run's own last line
        assert "model.keras" in text_of(app, "#training-files")
        run_row = main.query_one("#run-progress")  # how it ended, never "100% starting…"
        assert run_row.detail == "2 of 2 epochs · finished" and run_row.query_one("ProgressBar").percentage == 1
        accuracy = run_record(run.path)["details"]["accuracy"]
        assert f"{accuracy * 100:.2f} %" in text_of(app, "#metrics")
        assert table(app, "#confusion-table").row_count == 3
        assert main.session.model is not None and main.session.model_note == "trained 2 epochs"
        assert f"run {run.path.name} (pipeline, finished)" in status(app)
        await pilot.press("L")  # the opened run's model is the session's: e works on it
        await wait_idle(pilot)
        await pilot.press("e")
        await wait_idle(pilot)
        assert main.session.evaluation.accuracy == accuracy  # the same model on the same images
        assert run_record(main.session.run_dir)["task"] == "evaluate"
        # the evaluation of the run's own model is linked to it (issue 20.13)
        assert run_record(main.session.run_dir)["details"]["model_run"] == str(run.path.resolve())


# run.json is data, not truth: a damaged details object costs its figures, never the app (issue 20)
DAMAGED_DETAILS = ([1, 2], {"epochs_done": "x", "epochs": [3], "samples": "many", "batch_size": {"a": 1}},
                   {"epochs_done": 1e400, "best_epoch": float("inf"), "validation_samples": -4, "suggested_rate": True})


async def test_an_ended_run_with_damaged_details_still_opens(params_files, in_tmp):
    data_path, hyper_path, data, hyper = params(params_files, epochs=2)
    spec = TaskSpec("train", validate=0.25)
    run = control.prepare(spec, data, hyper, command="cnn-tui train")
    control.run_here(run, spec)
    record_path = run.path / "run.json"
    record = json.loads(record_path.read_text())
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        for damaged in DAMAGED_DETAILS:
            record_path.write_text(json.dumps({**record, "details": damaged}).replace("Infinity", "1e400"))
            await open_runs_view(pilot, 1)
            await pilot.press("enter")
            await wait_idle(pilot)
            assert app.is_running and main.query_one("#views").active == "training", damaged
            assert table(app, "#epoch-table").row_count == 2, damaged  # the figures come from history.csv
            assert f"run {run.path.name} (training, finished)" in status(app), damaged


async def test_an_ended_search_opens_with_its_best_params(params_files, in_tmp):
    data_path, hyper_path, data, hyper = params(params_files, epochs=1, num_filters=[4, 8])
    spec = TaskSpec("tune", cv=2)
    run = control.prepare(spec, data, hyper, command="cnn-tui tune")
    control.run_here(run, spec)
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        main.task_controller.open_finished(run.path)
        await wait_idle(pilot)
        assert main.query_one("#views").active == "tuning"
        result = main.session.tuning
        assert result.status == "finished" and len(result.rows) == 4
        assert table(app, "#results-table").row_count == 2
        assert text_of(app, "#results-title").startswith("Grid search results · 4 of 4 fits")
        await pilot.press("b")
        assert main.session.hyper.values["num_filters"] == result.best()["num_filters"]


async def test_k_in_the_runs_view_stops_a_run_after_asking(params_files, in_tmp):
    data_path, hyper_path, data, hyper = params(params_files, epochs=400, batch_size=4)
    run = launch_elsewhere(data, hyper)
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_runs_view(pilot, 1)
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert run.name in str(app.screen.query_one("#confirm-question").content)
        await pilot.press("n")
        await pilot.pause()
        assert control.is_running(run)
        await pilot.press("k")
        await pilot.pause()
        await pilot.press("y")
        record = await wait_run_ended(run, timeout=60)
        assert record["status"] == "stopped"
        assert f"stopping run {run.name} after the current batch…" in logged(app)
        assert app.main.session.busy is None  # the app was not following it


def following_threads() -> list[str]:
    """Threads inside ``run_events.follow`` right now."""
    import sys

    names = []
    for ident, frame in sys._current_frames().items():
        while frame is not None:
            if frame.f_code.co_name == "follow" and frame.f_code.co_filename.endswith("events_file.py"):
                names.append(str(ident))
                break
            frame = frame.f_back
    return names


async def test_however_the_app_ends_it_stops_following_and_the_run_goes_on(params_files, in_tmp):
    """Python waits for worker threads before a process exits: one that follows a run must end with the app."""
    data_path, hyper_path, data, hyper = params(params_files, epochs=400, batch_size=4)
    run = launch_elsewhere(data, hyper)
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.main.mount_views()
        app.main.task_controller.attach(run)
        await wait_for(pilot, lambda: table(app, "#epoch-table").row_count >= 1, timeout=60, what="an epoch")
        assert following_threads()
        app.exit()  # not through q: no question, no detach of its own
        await pilot.pause()
    deadline = time.monotonic() + 5
    while following_threads() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not following_threads()
    assert control.is_running(run)  # it goes on (the test's cleanup stops it)
