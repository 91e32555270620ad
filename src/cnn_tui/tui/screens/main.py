"""The main screen: menu bar, info bar, the views (Data, Model, Training, Evaluation, Tuning,
Log), a status line and the footer; which actions are enabled, menus, help and Snap.

Every action of the table (``tui.actions``) — a key, a menu item, a palette command — runs through one
Textual action, ``run('<name>')``: ``action_run`` calls what the action's entry names, a method of one of
the parts the screen is composed of: ``task_controller`` (``tui.parts.task_controller``: the screen's one
task, runs followed, how tasks end, quitting), ``params`` (params and model files), ``data_tools``,
``model_export`` and ``inspect``, or of the screen itself (its views, help and Snap)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections import deque
from datetime import datetime
from inspect import isawaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, TabbedContent, TabPane
from textual.worker import Worker

from cnn_tui.tui.actions import ACTIONS, BY_NAME, VIEWS
from cnn_tui.tui.messages import EngineEvent, KerasReady, LogLine, RunStarted
from cnn_tui.tui.parts.data_tools import DataTools
from cnn_tui.tui.parts.inspect_actions import InspectActions
from cnn_tui.tui.parts.model_export import ModelExport
from cnn_tui.tui.parts.params_actions import ParamsActions
from cnn_tui.tui.parts.task_controller import TaskController
from cnn_tui.tui.screens.help import AboutScreen, KeysScreen
from cnn_tui.tui.screens.menu import MenuScreen
from cnn_tui.tui.session import Session
from cnn_tui.tui.started import STARTED
from cnn_tui.tui.warmup import warm_up
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.header import InfoBar, MenuBar, MenuTitle, StatusLine
from cnn_tui.tui.widgets.tables import shown

if TYPE_CHECKING:  # the Runs view is mounted after the first frame
    from cnn_tui.tui.widgets.runs_view import RunsView


def run(name: str) -> str:
    """The Textual action string that runs the table's action ``name``: ``run('train')``."""
    return f"run({name!r})"


def _bindings() -> list[Binding]:
    bindings = [Binding("m,f10", "menu", "Menu")]
    seen = set()
    # the footer lists bindings in order: the tasks first, Keys and Quit last
    for action in sorted(ACTIONS, key=lambda a: a.name in ("keys", "quit")):
        if action.name in seen:
            continue
        seen.add(action.name)
        bindings.append(Binding(action.key, run(action.name), action.footer or action.label,
                                show=bool(action.footer), key_display=action.show_key or None))
    bindings.append(Binding("f1", run("keys"), "Keys", show=False))
    bindings += [Binding(key, f"page({pages})", label, show=False) for key, pages, label in (
        ("pageup", -1, "Page up"), ("pagedown", 1, "Page down"), ("home", -1000, "Top"), ("end", 1000, "Bottom"))]
    keys = {a.key for a in ACTIONS}  # a view that is an action too (Runs) is bound once, as the action
    bindings += [Binding(key, f"view('{view}')", label, show=False) for view, label, key in VIEWS if key not in keys]
    return bindings


KEY_TO_ACTION = {a.key: a.name for a in ACTIONS}
# the views not on the first screen: (tab, module, class), mounted right after the first frame
LATER_VIEWS = (
    ("model", "cnn_tui.tui.widgets.model_view", "ModelView"),
    ("training", "cnn_tui.tui.widgets.training_view", "TrainingView"),
    ("evaluation", "cnn_tui.tui.widgets.evaluation_view", "EvaluationView"),
    ("tuning", "cnn_tui.tui.widgets.tuning_view", "TuningView"),
    ("runs", "cnn_tui.tui.widgets.runs_view", "RunsView"),
)
WIDE = 120  # columns from which charts and tables sit side by side
AFTER_FIRST_FRAME = 0.1  # seconds between the first frame and the work that waits for it
HEAVY = {"init_model", "train", "train_val", "train_calibrated", "evaluate", "predict", "predict_tta", "tune"}


class MainScreen(Screen):
    BINDINGS = _bindings()

    def __init__(self, session: Session | None = None, *, warm_keras: bool = True,
                 device_label: str | None = None) -> None:
        super().__init__()
        self.session = session or Session()
        self.warm = warm_keras
        self.device_label = device_label or "loading Keras…"
        self.dirty: set[str] = set()  # params edited in the app and not saved yet
        self.messages: deque[tuple[str, str]] = deque(maxlen=1000)  # (level, text), newest last
        self.views_mounted = asyncio.Event()
        self.views_started = False
        self.task_controller = TaskController(self)
        self.params = ParamsActions(self)
        self.data_tools = DataTools(self)
        self.model_export = ModelExport(self)
        self.inspect = InspectActions(self)  # error analysis, Grad-CAM, feature maps

    def compose(self) -> ComposeResult:
        # set before the children mount: changed later, the class restyles every widget
        width = self.app.size.width
        self.set_class(width >= WIDE, "-wide")
        yield MenuBar(id="menubar")
        yield InfoBar(id="infobar")
        with TabbedContent(id="views", initial="data"):
            for name, label, key in VIEWS:
                with TabPane(f"{key} {label}", id=name):
                    # the others are filled right after the first frame (``mount_views``): fewer widgets to
                    # style before it
                    if name == "data":
                        yield DataView()
                    elif name == "log":
                        yield RichLog(id="log-view", wrap=True, markup=False, highlight=False)
        yield StatusLine(id="status")
        yield Footer(compact=True, show_command_palette=width >= 100)

    async def on_mount(self) -> None:
        self.call_after_refresh(self.first_frame)
        await self.restore_views()
        self.refresh_state()
        self.say("ready · m opens the menus, ? lists every key")

    def first_frame(self) -> None:
        logging.getLogger("cnn_tui.tui").info("first frame %.2fs after launch", time.perf_counter() - STARTED)
        # The frame is still on its way to the terminal (Textual writes from a thread): work started
        # now would hold it back by a third of a second on a busy small machine.
        self.set_timer(AFTER_FIRST_FRAME, self.after_first_frame)

    async def after_first_frame(self) -> None:
        if self.warm:  # in a thread that keeps off the GIL where it can (see tui.warmup)
            self.warm_keras()
        await self.mount_views()
        self.task_controller.check_running_runs(self.results_folders())

    def warm_keras(self) -> None:
        """Import Keras after the first frame, so the UI never waits for TensorFlow (see ``tui.warmup``)."""
        warm_up(lambda label, error: self.post_message(KerasReady(label, error)))

    def on_keras_ready(self, message: KerasReady) -> None:
        logging.getLogger("cnn_tui.tui").info("Keras ready (%s) %.2fs after launch", message.label,
                                              time.perf_counter() - STARTED)
        self.session.keras_error = message.error
        self.device_label = message.label
        if message.error:
            self.say(message.error, "error")
        self.refresh_state()

    async def mount_views(self) -> None:
        """Mount the views behind the other tabs (once; whoever needs them first waits for them)."""
        if self.views_started:
            await self.views_mounted.wait()
            return
        self.views_started = True
        for name, module, cls in LATER_VIEWS:
            view = getattr(importlib.import_module(module), cls)(id=f"{name}-view")
            if name == "runs":
                view.set_folders(self.results_folders())  # listed when it mounts
            await self.query_one(f"#{name}", TabPane).mount(view)
        s = self.session
        if s.model is not None:
            self.view("model").show(s.model, s.model_label())
        if s.evaluation is not None:
            self.view("evaluation").show(s.evaluation, confusion=True, title="Prediction on the test set")
        if s.tuning is not None:
            self.view("tuning").show_result(s.tuning, stopped=s.tuning.status != "finished")
        self.views_mounted.set()

    def view(self, name: str) -> Any:
        """The Model, Training, Evaluation, Tuning or Runs view (after ``mount_views``)."""
        return self.query_one(f"#{name}-view")

    def results_folders(self) -> list[Path]:
        """Where runs are: the data params' results folder and ./results."""
        folders = [Path.cwd() / "results"]
        if self.session.data is not None:
            folders.insert(0, self.session.data.results_path)
        return list({str(f.resolve()): f for f in folders}.values())

    async def restore_views(self) -> None:
        """Show what an injected session already holds (tests, and params given on the command line);
        the views behind other tabs show theirs when they are mounted."""
        s = self.session
        self.query_one(DataView).show_params(s.data, s.hyper)
        if s.train_set is not None:
            await self.query_one(DataView).show_set("training", s.train_set)
        if s.test_set is not None:
            await self.query_one(DataView).show_set("test", s.test_set)

    # ------------------------------------------------------------ state shown everywhere

    def refresh_state(self) -> None:
        s = self.session

        def name(params: Any, kind: str) -> str | None:
            if params is None:
                return None
            label = params.source.stem if params.source else "unsaved"  # .json goes: room for the model state
            return label + ("*" if kind in self.dirty and params.source else "")

        self.query_one(InfoBar).show(data=name(s.data, "data"), hyper=name(s.hyper, "hyper"), model=s.model_label(),
                                     train=len(s.train_set) if s.train_set else None,
                                     test=len(s.test_set) if s.test_set else None)
        self.query_one(MenuBar).set_device(self.device_label, error=bool(s.keras_error))
        self.query_one(DataView).show_params(s.data, s.hyper)
        if self.views_mounted.is_set():
            self.view("runs").set_folders(self.results_folders())  # lists again only when they changed
        self.refresh_bindings()

    def say(self, text: str, level: str = "info") -> None:
        """One line on the status bar and in the log; warnings and errors also pop up."""
        text = shown(text)  # paths and class names may hold bytes that are not UTF-8
        self.messages.append((level, text))
        self.query_one(StatusLine).say(text, level)
        stamp = datetime.now().strftime("%H:%M:%S")
        self.query_one("#log-view", RichLog).write(Text(f"{stamp} {text}", style=StatusLine.STYLES.get(level, "")))
        if level in ("warning", "error"):  # user text (paths, values): never markup
            self.notify(text, severity=level, timeout=8 if level == "error" else 5, markup=False)

    def on_log_line(self, message: LogLine) -> None:
        # Python warnings: the log and status line only, a library may repeat one per batch
        self.query_one(StatusLine).say(message.text, message.level)
        self.query_one("#log-view", RichLog).write(Text(message.text, style="yellow"))

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")
        # at 80 columns the task keys need the room; ctrl+p is listed under ? (Keys)
        self.query_one(Footer).show_command_palette = event.size.width >= 100

    def show_view(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    # ------------------------------------------------------------ enabling actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "run":
            return True
        name = str(parameters[0])
        reason = self.session.why_not(name)
        if name == "stop":
            return reason is None  # Stop appears in the footer only while something runs
        if self.session.busy and reason and name in HEAVY:
            return False  # while a task runs the footer shows Stop, not a row of disabled tasks
        return None if reason else True  # None: shown disabled in the footer

    def on_key(self, event: events.Key) -> None:
        """A key whose action is disabled says why instead of doing nothing."""
        name = KEY_TO_ACTION.get(event.key)
        if name and (reason := self.session.why_not(name)):
            event.stop()
            self.say(f"{BY_NAME[name].label}: {reason}", "warning")

    async def run_named(self, name: str) -> None:
        """Menus and the command palette come here: run the action, or say why not."""
        if reason := self.session.why_not(name):
            self.say(f"{BY_NAME[name].label}: {reason}", "warning")
            return
        await self.action_run(name)

    async def action_run(self, name: str) -> None:
        """Run the table's action ``name``: call what its entry names (``Action.calls``)."""
        part, _, method = BY_NAME[name].calls.rpartition(".")
        result = getattr(getattr(self, part) if part else self, method)()
        if isawaitable(result):
            await result

    # ------------------------------------------------------------ menus, views, help

    def action_menu(self, menu: str = "App") -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.call_later(self.run_named, name)

        self.app.push_screen(MenuScreen(menu, self.session.why_not), chosen)

    def on_menu_title_clicked(self, message: MenuTitle.Clicked) -> None:
        self.action_menu(message.menu)

    async def action_view(self, name: str) -> None:
        await self.mount_views()
        self.show_view(name)
        if name == "runs":
            self.view("runs").table.focus()  # Enter opens, space marks, k stops
        elif name == "evaluation":
            self.view("evaluation").focus_matrix()  # arrows walk the cells, Enter lists a cell's images

    async def show_runs(self) -> None:
        await self.action_view("runs")
        self.view("runs").refresh_runs()

    def action_page(self, pages: int) -> None:
        """Page through the current view without focusing it first (a focused table pages itself)."""
        pane = self.query_one(TabbedContent).active_pane
        if pane is None:
            return
        for view in (*pane.children, *pane.query("*")):
            if view.allow_vertical_scroll:
                view.scroll_to(y=view.scroll_y + pages * max(1, view.size.height - 2), animate=False)
                return

    def show_about(self) -> None:
        self.app.push_screen(AboutScreen(self.device_label, getattr(self.app, "log_path", None)))

    def show_keys(self) -> None:
        self.app.push_screen(KeysScreen())

    def snap(self) -> None:
        s = self.session
        folder = s.run_dir or (s.data.results_path if s.data else Path.cwd() / "results")
        screen = self.app.screen
        # the view's name on the main screen, else the dialog's ("menu", "params", "keys"...)
        view = (self.query_one(TabbedContent).active or "main") if screen is self else (
            type(screen).__name__.removesuffix("Screen").lower() or "dialog")
        name = f"snap-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{view}.svg"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.app.save_screenshot(filename=name, path=str(folder))
        except OSError as exc:
            self.say(f"cannot save the screenshot in {folder}: {exc.strerror or exc}", "error")
            return
        self.say(f"screenshot saved: {path}", "success")

    # ------------------------------------------------------------ messages: to the parts

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        await self.task_controller.on_worker_state_changed(event)

    async def on_engine_event(self, message: EngineEvent) -> None:
        await self.task_controller.on_engine_event(message)

    def on_unmount(self) -> None:
        self.task_controller.shut_down()  # however the app ends, no worker thread keeps the process alive

    def on_run_started(self, message: RunStarted) -> None:
        self.session.run_dir = message.run_dir
        if self.views_mounted.is_set():
            self.view("runs").refresh_runs()

    def on_runs_view_open_run(self, message: RunsView.OpenRun) -> None:
        self.task_controller.open_run(message.run_dir, running=message.running)

    def on_runs_view_stop_run(self, message: RunsView.StopRun) -> None:
        self.task_controller.ask_to_stop_run(message.run_dir)

    def on_runs_view_compare_runs(self, message: RunsView.CompareRuns) -> None:
        from cnn_tui.tui.screens.runs_compare import RunsCompareScreen  # noqa: PLC0415 — not before the first frame

        self.app.push_screen(RunsCompareScreen(message.run_dirs))

    def on_evaluation_view_cell_chosen(self, message: Any) -> None:
        self.inspect.open_cell(message.true, message.predicted)
