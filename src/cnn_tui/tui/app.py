"""The Textual application: screens, global keys and the command palette; nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from cnn_tui.tui import hangup
from cnn_tui.tui.actions import ACTIONS
from cnn_tui.tui.screens.main import MainScreen
from cnn_tui.tui.session import Session
from cnn_tui.tui.settings import read_settings, remember


class CnnApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "cnn-tui"
    # F12 snaps any screen, dialogs and menus included (c does it on the main screen)
    BINDINGS = [Binding("f12", "snap", "Snap", show=False, priority=True)]

    def __init__(
        self,
        *,
        data: Path | None = None,
        hyper: Path | None = None,
        model: Path | None = None,
        session: Session | None = None,
        warm_keras: bool = True,
        device_label: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.start_files = {"data": data, "hyper": hyper}
        self.start_model = model
        self.log_path = log_path
        self.main = MainScreen(session, warm_keras=warm_keras, device_label=device_label)
        theme = read_settings().get("theme")
        if isinstance(theme, str) and theme in self.available_themes:  # the one chosen last time
            self.theme = theme
        self.saved_theme = self.theme

    def watch_theme(self, theme: str) -> None:
        if theme != getattr(self, "saved_theme", theme):  # a change, not the start-up's own setting
            self.saved_theme = theme
            remember(theme=theme)  # chosen in the command palette: kept for the next session

    async def on_mount(self) -> None:
        self.watch_hang_ups()
        await self.push_screen(self.main)
        for kind, path in self.start_files.items():
            if path is not None:
                self.main.params.load_params_file(kind, Path(path))
        if self.start_model is not None:
            self.main.task_controller.load_model(Path(self.start_model))

    def watch_hang_ups(self) -> None:
        """SIGHUP (the SSH connection dropped), a terminal that hung up, and SIGTERM call the main screen's
        ``TaskController.hang_up``: it stops what runs in this process (it saves; a run process goes on) and
        quits, asking nothing. In a terminal, drawing stops at once and the process ends within
        ``hangup.GRACE_S`` seconds whatever happens (see ``tui.hangup``)."""
        hangup.watch(self, self.main.task_controller.hang_up)

    def action_snap(self) -> None:
        self.main.snap()

    async def action_quit(self) -> None:
        # ctrl+q and the palette's quit ask first while a task runs, like q
        await self.main.run_named("quit")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = set()
        for action in ACTIONS:
            if action.name in seen or action.name == "quit":
                continue
            seen.add(action.name)
            reason = self.main.session.why_not(action.name)
            help_text = f"unavailable: {reason}" if reason else f"{action.help} · key {action.key_label}"
            yield SystemCommand(f"{action.menu}: {action.label}", help_text,
                                lambda name=action.name: self.main.call_later(self.main.run_named, name))
