"""The Runs view and the compare screen, on run folders written by hand (no training): rows newest
first with their statuses (a dead process's run shows interrupted), Enter / k post their messages,
space + c compare the marked runs with the differing params first and flagged."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import WorkerCancelled

from cnn_tui.core.runs import processes
from cnn_tui.tui.screens.runs_compare import DIFFERS, MISSING, RunFiles, RunsCompareScreen, header, param_rows
from cnn_tui.tui.widgets.runs_view import RunsTable, RunsView, format_metrics, format_started
from cnn_tui.tui.widgets.tables import format_duration

from tui_helpers import make_app, wait_for

HYPER = {"init_rate": 0.02, "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3, "num_filters": 32,
         "num_units": 512, "momentum": 0.9, "drop_out": 0.2, "epochs": 3, "batch_size": 64}
DATA = {"num_classes": 3, "train_dir": "/data/digits/training", "test_dir": "/data/digits/testing", "image_size": 8}


def write_run(parent: Path, run_id: str, status: str, started: str, *, task: str = "train_val",
              seconds: float | None = 12.0, hyper: dict | None = None, data: dict | None = None,
              history: dict[str, list[float]] | None = None, details: dict | None = None, message: str = "",
              identity: dict | None = None, events: bool = True) -> Path:
    folder = parent / run_id
    folder.mkdir(parents=True)
    record: dict[str, Any] = {"run_id": run_id, "task": task, "status": status, "message": message,
                              "started": started, "seconds": seconds, "details": details or {},
                              "exit_code": 0 if status == "finished" else None, **(identity or {})}
    (folder / "run.json").write_text(json.dumps(record))
    if hyper is not None:
        (folder / "hyper_params.json").write_text(json.dumps(hyper))
    if data is not None:
        (folder / "data_params.json").write_text(json.dumps(data))
    if history:
        keys = list(history)
        lines = ["epoch," + ",".join(keys)]
        lines += [f"{i}," + ",".join(str(history[k][i]) for k in keys) for i in range(len(history[keys[0]]))]
        (folder / "history.csv").write_text("\n".join(lines) + "\n")
    if events:
        (folder / "events.jsonl").write_text("")
    return folder


def dead_identity() -> dict[str, Any]:
    """A process that existed on this machine and has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"pid": child.pid, "host": socket.gethostname(), "boot_id": processes.boot_id()}


def history(epochs: int, start: float) -> dict[str, list[float]]:
    acc = [min(0.99, start + 0.05 * i) for i in range(epochs)]
    loss = [1.0 / (i + 1) for i in range(epochs)]
    return {"accuracy": acc, "loss": loss, "val_accuracy": [a - 0.02 for a in acc], "val_loss": [v + 0.1 for v in loss]}


def make_runs(parent: Path) -> dict[str, Path]:
    """Five runs, written oldest first on purpose: the view sorts them."""
    h1, h2 = history(3, 0.7), history(5, 0.6)
    return {
        "finished": write_run(parent, "20250101-100000-train_val", "finished", "2025-01-01T10:00:00", seconds=754,
                              hyper=HYPER, data=DATA, history=h1,
                              details={"final": {k: v[-1] for k, v in h1.items()}, "accuracy": 0.981}),
        "interrupted": write_run(parent, "20250102-100000-train", "running", "2025-01-02T10:00:00", seconds=None,
                                 task="train", hyper=HYPER, data=DATA, identity=dead_identity()),
        "running": write_run(parent, "20250103-100000-train_val", "running", "2025-01-03T10:00:00", seconds=None,
                             hyper={**HYPER, "batch_size": 32}, data=DATA, identity=processes.identity()),
        "stopped": write_run(parent, "20250104-100000-train_val", "stopped", "2025-01-04T10:00:00", seconds=301,
                             hyper={**HYPER, "init_rate": 0.05, "epochs": 7}, data={**DATA, "image_size": 12},
                             history=h2, message="stopped by the user [after] epoch 5", events=False),
        "evaluate": write_run(parent, "20250105-100000-evaluate", "finished", "2025-01-05T10:00:00", seconds=3,
                              task="evaluate", data={**DATA, "test_dir": "/data/[bold]odd set"},
                              details={"accuracy": 0.975}, message="[red]not markup[/red]"),
    }


class RunsApp(App):
    def __init__(self, folders: list[Path]) -> None:
        super().__init__()
        self.folders = folders
        self.opened: list[RunsView.OpenRun] = []
        self.stops: list[RunsView.StopRun] = []
        self.compared: list[RunsView.CompareRuns] = []

    def compose(self) -> ComposeResult:
        yield RunsView(self.folders, id="runs")

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()

    def on_runs_view_open_run(self, message: RunsView.OpenRun) -> None:
        self.opened.append(message)

    def on_runs_view_stop_run(self, message: RunsView.StopRun) -> None:
        self.stops.append(message)

    def on_runs_view_compare_runs(self, message: RunsView.CompareRuns) -> None:
        self.compared.append(message)
        self.push_screen(RunsCompareScreen(message.run_dirs))  # as the main screen does


async def settle(pilot) -> None:
    """Wait for the listing (a newer listing cancels an older one: that one is not waited for)."""
    for _ in range(10):
        try:
            await pilot.app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause()


def cells(table: DataTable, row: int) -> dict[str, str]:
    values = table.get_row_at(row)
    return {str(c.key.value): (v.plain if isinstance(v, Text) else str(v)) for c, v in zip(table.ordered_columns, values)}


def static_text(widget: Static) -> str:
    content = widget.content
    return content.plain if isinstance(content, Text) else str(content)


def select(view: RunsView, folder: Path) -> None:
    view.table.move_cursor(row=[r.run_dir for r in view.runs].index(str(folder)))


# ---------------------------------------------------------------- the list


async def test_rows_newest_first_with_statuses(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        table = view.table
        assert table.row_count == 5
        rows = [cells(table, i) for i in range(5)]
        assert [r["run"] for r in rows] == [
            "20250105-100000-evaluate", "20250104-100000-train_val", "20250103-100000-train_val",
            "20250102-100000-train", "20250101-100000-train_val"]
        assert [r["status"] for r in rows] == ["finished", "stopped", "running", "interrupted", "finished"]
        # the stopped run has no events.jsonl: still listed, its figures from history.csv
        assert not (runs["stopped"] / "events.jsonl").exists()
        assert rows[1]["metrics"].startswith("val_acc 78.0%")
        assert rows[0]["metrics"] == "test 97.5%"
        assert rows[4]["metrics"].startswith("test 98.1%")
        assert rows[1]["duration"] == "0:05:01" and rows[4]["duration"] == "0:12:34"
        header = static_text(view.query_one("#runs-header", Static))
        assert "5 in" in header and "1 running" in header
        # text from files is shown as it is written, never as markup
        assert rows[0]["data"].startswith("data/[bold]odd")  # an evaluation: its test folder, as written
        select(view, runs["evaluate"])
        await pilot.pause()
        detail = static_text(view.query_one("#runs-detail", Static))
        assert "[red]not markup[/red]" in detail
        select(view, runs["stopped"])
        await pilot.pause()
        detail = static_text(view.query_one("#runs-detail", Static))
        assert "init_rate=0.05" in detail and "epochs=7" in detail and "[after]" in detail


async def test_narrow_view_keeps_the_essentials(tmp_path):
    make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.query_one(RunsView).table
        keys = [str(c.key.value) for c in table.ordered_columns]
        assert keys[:3] == ["mark", "status", "run"] and "metrics" in keys and "duration" in keys
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= 80


async def test_enter_opens_the_run_with_its_running_flag(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        select(view, runs["running"])
        await pilot.press("enter")
        select(view, runs["interrupted"])
        await pilot.press("enter")
        await pilot.pause()
        assert [(m.run_dir, m.running) for m in app.opened] == [(runs["running"], True), (runs["interrupted"], False)]


async def test_k_asks_to_stop_only_a_running_run(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        select(view, runs["finished"])
        await pilot.press("k")
        await pilot.pause()
        assert app.stops == []
        assert any("not running" in n.message for n in app._notifications)
        select(view, runs["running"])
        await pilot.press("k")
        await pilot.pause()
        assert [m.run_dir for m in app.stops] == [runs["running"]]


async def test_refresh_follows_a_run_that_ends(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        assert [r.run_dir for r in view.running] == [str(runs["running"])]
        record = json.loads((runs["running"] / "run.json").read_text())
        record.update(status="finished", seconds=90, details={"final": {"accuracy": 0.9}})
        (runs["running"] / "run.json").write_text(json.dumps(record))
        view._tick()  # what the two-second timer does while a run is running
        await settle(pilot)
        assert view.running == []
        select(view, runs["running"])
        assert cells(view.table, view.table.cursor_row)["status"] == "finished"
        # a new run folder appears on r
        write_run(tmp_path / "results", "20250106-100000-train", "failed", "2025-01-06T10:00:00", task="train")
        await pilot.press("r")
        await settle(pilot)
        assert view.table.row_count == 6 and cells(view.table, 0)["status"] == "failed"


async def test_no_runs_says_so(tmp_path):
    app = RunsApp([tmp_path / "nothing-here"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        assert view.table.row_count == 0
        assert "No runs yet" in static_text(view.query_one("#runs-header", Static))
        await pilot.press("enter", "space", "k", "c")  # nothing to act on: no error
        await pilot.pause()
        assert app.opened == [] and app.stops == [] and app.compared == []


# ---------------------------------------------------------------- compare


async def test_compare_needs_two_marked_runs(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        select(view, runs["finished"])
        await pilot.press("space", "c")
        await pilot.pause()
        assert not isinstance(app.screen, RunsCompareScreen) and app.compared == []
        assert any("at least two" in n.message for n in app._notifications)
        await pilot.press("space")  # unmark
        assert view.marked == set()


async def test_mark_two_and_compare(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = RunsApp([tmp_path / "results"])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        for name in ("finished", "stopped", "evaluate"):
            select(view, runs[name])
            await pilot.press("space")
        assert cells(view.table, view.table.cursor_row)["mark"] == "●"
        assert view.marked_dirs() == [runs["evaluate"], runs["stopped"], runs["finished"]]
        await pilot.press("c")
        await settle(pilot)
        assert [m.run_dirs for m in app.compared] == [[runs["evaluate"], runs["stopped"], runs["finished"]]]
        screen = app.screen
        assert isinstance(screen, RunsCompareScreen)
        params = screen.query_one("#compare-params-table", DataTable)
        rows = [[(v.plain if isinstance(v, Text) else str(v)) for v in params.get_row_at(i)]
                for i in range(params.row_count)]
        flagged = [r[1] for r in rows if r[0] == DIFFERS]
        assert set(flagged) == {"init_rate", "epochs", "image_size"}
        assert [r[0] for r in rows[:3]] == [DIFFERS] * 3 and all(r[0] != DIFFERS for r in rows[3:])
        # columns: flag, name, then the runs as marked (newest first); the evaluation has no hyper params
        by_name = {r[1]: r[2:] for r in rows}
        assert by_name["init_rate"] == [MISSING, "0.05", "0.02"]
        assert by_name["epochs"] == [MISSING, "7", "3"]
        assert by_name["image_size"] == ["8", "12", "8"]
        assert by_name["batch_size"] == [MISSING, "64", "64"]
        first = params.get_row_at(0)[1]
        assert "yellow" in str(first.style) and "bold" in str(first.style)

        figures = screen.query_one("#compare-metrics-table", DataTable)
        got = {str(figures.get_row_at(i)[1]): [v.plain for v in figures.get_row_at(i)[2:]]
               for i in range(figures.row_count)}
        assert got["test accuracy"] == ["97.50%", MISSING, "98.10%"]
        assert got["epochs done"] == [MISSING, "5", "3"]
        assert got["final val_accuracy"] == [MISSING, "78.00%", "78.00%"]
        assert got["duration"] == ["0:00:03", "0:05:01", "0:12:34"]
        assert got["status"] == ["finished", "stopped", "finished"]

        await pilot.press("2")
        assert screen.query_one("#compare-tabs").active == "compare-params"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RunsCompareScreen)


async def test_on_the_main_screen_c_opens_the_compare_screen(in_tmp):
    runs = make_runs(in_tmp / "results")  # ./results: a folder the main screen lists
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("7")
        view = app.main.view("runs")
        await wait_for(pilot, lambda: view.table.row_count == len(runs), what="the runs listed")
        for name in ("finished", "stopped"):
            select(view, runs[name])
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsCompareScreen), what="the compare screen")
        assert app.screen.run_dirs == [runs["stopped"], runs["finished"]]


class GreedyScreen(Screen):
    """Like the main screen, which stops a key whose own action is disabled (c = Snap) in on_key."""

    def __init__(self, folders: list[Path]) -> None:
        super().__init__()
        self.folders = folders

    def compose(self) -> ComposeResult:
        yield RunsView(self.folders)

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()

    def on_key(self, event) -> None:
        event.stop()

    def on_runs_view_compare_runs(self, message: RunsView.CompareRuns) -> None:
        self.app.push_screen(RunsCompareScreen(message.run_dirs))


async def test_the_views_keys_come_before_the_screens(tmp_path):
    runs = make_runs(tmp_path / "results")
    app = App()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(GreedyScreen([tmp_path / "results"]))
        await settle(pilot)
        view = app.screen.query_one(RunsView)
        for name in ("finished", "stopped"):
            select(view, runs[name])
            await pilot.press("space")
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, RunsCompareScreen)


# ---------------------------------------------------------------- pieces


def test_cell_formats():
    assert format_duration(None) == "-"
    assert format_duration(3723.4) == "1:02:03"
    assert format_metrics({}) == "-"
    assert format_metrics({"accuracy": 0.99, "val_accuracy": 0.972, "test_accuracy": 0.981}) == \
        "test 98.1% · val_acc 97.2%"
    assert format_metrics({"best_cv_accuracy": 0.96}, 1) == "best cv 96.0%"
    assert format_started("2025-03-14T10:15:30", now=__import__("datetime").datetime(2025, 6, 1)) == "03-14 10:15"
    assert format_started("2024-03-14T10:15:30", now=__import__("datetime").datetime(2025, 6, 1)) == "2024-03-14"
    assert header("20250314-101530-train_val") == "20250314-101530\ntrain_val"
    assert header("my-run") == "my-run"


def test_param_rows_ignore_runs_without_the_file():
    a = RunFiles(Path("a"), "a", hyper={"init_rate": 0.02, "epochs": 3, "extra": "x"}, data=None)
    b = RunFiles(Path("b"), "b", hyper={"init_rate": 0.02, "epochs": 4}, data=None)
    c = RunFiles(Path("c"), "c", hyper=None, data=None)
    rows = param_rows([a, b, c])
    assert [(r.name, r.differs) for r in rows] == [("epochs", True), ("extra", True), ("init_rate", False)]
    assert rows[1].values == ["x", MISSING, MISSING]
    assert rows[2].values == ["0.02", "0.02", MISSING]


async def test_hundreds_of_runs(tmp_path):
    parent = tmp_path / "results"
    for i in range(200):
        write_run(parent, f"2024{i % 12 + 1:02d}{i % 28 + 1:02d}-{i:06d}-train", "finished",
                  f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 24:02d}:00:{i % 60:02d}", task="train",
                  hyper={**HYPER, "epochs": i % 7 + 1}, data=DATA, details={"final": {"accuracy": 0.9}}, events=False)
    app = RunsApp([parent])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        view = app.query_one(RunsView)
        assert view.table.row_count == 200
        started = [r.started for r in view.runs]
        assert started == sorted(started, reverse=True)
