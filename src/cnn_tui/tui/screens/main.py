"""The main screen: menu bar, info bar, the views (Data, Model, Training, Evaluation, Tuning,
Log), a status line and the footer; which actions are enabled, menus, help, Snap and quit.
Params and model files are handled in ``tui.params_actions``, heavy tasks in ``tui.tasks``."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, TabbedContent, TabPane

from cnn_tui.tui.actions import ACTIONS, BY_NAME, VIEWS
from cnn_tui.tui.messages import LogLine
from cnn_tui.tui.params_actions import ParamsMixin
from cnn_tui.tui.screens.confirm import ConfirmScreen
from cnn_tui.tui.screens.help import AboutScreen, KeysScreen
from cnn_tui.tui.screens.menu import MenuScreen
from cnn_tui.tui.session import Session
from cnn_tui.tui.tasks import TaskMixin
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.header import InfoBar, MenuBar, MenuTitle, StatusLine


def _bindings() -> list[Binding]:
    bindings = [Binding("m,f10", "menu", "Menu")]
    seen = set()
    # the footer lists bindings in order: the tasks first, Keys and Quit last
    for action in sorted(ACTIONS, key=lambda a: a.name in ("keys", "quit")):
        if action.name in seen:
            continue
        seen.add(action.name)
        bindings.append(Binding(action.key, action.name, action.footer or action.label, show=bool(action.footer),
                                key_display=action.show_key or None))
    bindings.append(Binding("f1", "keys", "Keys", show=False))
    bindings += [Binding(key, f"page({pages})", label, show=False) for key, pages, label in (
        ("pageup", -1, "Page up"), ("pagedown", 1, "Page down"), ("home", -1000, "Top"), ("end", 1000, "Bottom"))]
    bindings += [Binding(key, f"view('{view}')", label, show=False) for view, label, key in VIEWS]
    return bindings


KEY_TO_ACTION = {a.key: a.name for a in ACTIONS}
# the views not on the first screen: (tab, module, class), mounted right after the first frame
LATER_VIEWS = (
    ("model", "cnn_tui.tui.widgets.model_view", "ModelView"),
    ("training", "cnn_tui.tui.widgets.training_view", "TrainingView"),
    ("evaluation", "cnn_tui.tui.widgets.evaluation_view", "EvaluationView"),
    ("tuning", "cnn_tui.tui.widgets.tuning_view", "TuningView"),
)
WIDE = 120  # columns from which charts and tables sit side by side
AFTER_FIRST_FRAME = 0.1  # seconds between the first frame and the work that waits for it
HEAVY = {"init_model", "train", "train_val", "evaluate", "predict", "tune"}


class MainScreen(ParamsMixin, TaskMixin, Screen):
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

    def compose(self) -> ComposeResult:
        # set before the children mount: changed later, the class restyles every widget
        width = self.app.size.width
        self.set_class(width >= WIDE, "-wide")
        yield MenuBar(id="menubar")
        yield InfoBar(id="infobar")
        with TabbedContent(id="views", initial="data"):
            with TabPane("1 Data", id="data"):
                yield DataView()
            # filled right after the first frame (``mount_views``): fewer widgets to style before it
            for number, (name, _, _) in enumerate(LATER_VIEWS, start=2):
                yield TabPane(f"{number} {name.capitalize()}", id=name)
            with TabPane("6 Log", id="log"):
                yield RichLog(id="log-view", wrap=True, markup=False, highlight=False)
        yield StatusLine(id="status")
        yield Footer(compact=True, show_command_palette=width >= 100)

    async def on_mount(self) -> None:
        self.call_after_refresh(self.first_frame)
        await self.restore_views()
        self.refresh_state()
        self.say("ready · m opens the menus, ? lists every key")

    def first_frame(self) -> None:
        from cnn_tui.tui.launch import STARTED

        logging.getLogger("cnn_tui.tui").info("first frame %.2fs after launch", time.perf_counter() - STARTED)
        # The frame is still on its way to the terminal (Textual writes from a thread): work started
        # now would hold it back by a third of a second on a busy small machine.
        self.set_timer(AFTER_FIRST_FRAME, self.after_first_frame)

    async def after_first_frame(self) -> None:
        if self.warm:  # in a thread that keeps off the GIL where it can (see tui.warmup)
            self.warm_keras()
        await self.mount_views()

    async def mount_views(self) -> None:
        """Mount the views behind the other tabs (once; whoever needs them first waits for them)."""
        if self.views_started:
            await self.views_mounted.wait()
            return
        self.views_started = True
        for name, module, cls in LATER_VIEWS:
            view = getattr(importlib.import_module(module), cls)(id=f"{name}-view")
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
        """The Model, Training, Evaluation or Tuning view (after ``mount_views``)."""
        return self.query_one(f"#{name}-view")

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
        self.refresh_bindings()

    def say(self, text: str, level: str = "info") -> None:
        """One line on the status bar and in the log; warnings and errors also pop up."""
        self.messages.append((level, text))
        self.query_one(StatusLine).say(text, level)
        stamp = datetime.now().strftime("%H:%M:%S")
        self.query_one("#log-view", RichLog).write(Text(f"{stamp} {text}", style=StatusLine.STYLES.get(level, "")))
        if level in ("warning", "error"):
            self.notify(text, severity=level, timeout=8 if level == "error" else 5)

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
        if action not in BY_NAME:
            return True
        reason = self.session.why_not(action)
        if action == "stop":
            return reason is None  # Stop appears in the footer only while something runs
        if self.session.busy and reason and action in HEAVY:
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
        await self.run_action(name)

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

    def action_page(self, pages: int) -> None:
        """Page through the current view without focusing it first (a focused table pages itself)."""
        pane = self.query_one(TabbedContent).active_pane
        if pane is None:
            return
        for view in (*pane.children, *pane.query("*")):
            if view.allow_vertical_scroll:
                view.scroll_to(y=view.scroll_y + pages * max(1, view.size.height - 2), animate=False)
                return

    def action_about(self) -> None:
        self.app.push_screen(AboutScreen(self.device_label, getattr(self.app, "log_path", None)))

    def action_keys(self) -> None:
        self.app.push_screen(KeysScreen())

    def action_snap(self) -> None:
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

    def hang_up(self, signal_name: str) -> None:
        """The terminal is gone or we were told to end: stop the task (it saves), then quit, asking nothing."""
        logging.getLogger("cnn_tui.tui").warning("%s: stopping %s and quitting", signal_name, self.session.busy or "nothing")
        if self.session.busy:
            self.quit_when_done = True
            if self.session.stoppable:
                self.stop_event.set()
        else:
            self.app.exit()

    async def action_quit(self) -> None:
        if self.session.busy:
            def answer(yes: bool | None) -> None:
                if yes and self.session.busy:
                    self.quit_when_done = True
                    if self.session.stoppable:
                        self.stop_event.set()
                    self.say(f"stopping {self.session.busy}, then quitting; what was saved stays", "warning")
                elif yes:
                    self.app.exit()

            question = f"{self.session.busy.capitalize()} is running. Stop it (keeping what was saved) and quit?"
            self.app.push_screen(ConfirmScreen("Quit cnn-tui?", question, yes="Stop and quit", no="Keep running"),
                                 answer)
            return
        if self.dirty:
            kinds = " and ".join(f"{k} params" for k in sorted(self.dirty))

            def leave(yes: bool | None) -> None:
                if yes:
                    self.app.exit()

            self.app.push_screen(ConfirmScreen("Quit cnn-tui?", f"The {kinds} have changes not saved to a file "
                                               "(s / S save them). Quit anyway?", yes="Quit", no="Stay"), leave)
            return
        self.app.exit()
