"""Help dialogs: About (version, backend, device, where the docs are) and the keys overview."""

from __future__ import annotations

import platform
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from cnn_tui import __version__
from cnn_tui.core import backend
from cnn_tui.tui.actions import MENUS, VIEWS, menu_items

REPO_DOCS = Path(__file__).resolve().parents[4]  # the checkout: README.md and docs/ live here


class InfoDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: object) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body  # a Rich renderable

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog info-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="info-body"):
                yield Static(self.body)
            yield Button("Close", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one(".info-body").focus()  # arrows and page keys scroll it at once

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class AboutScreen(InfoDialog):
    def __init__(self, device: str, log_path: Path | None) -> None:
        super().__init__("About cnn-tui", about_body(device, log_path))


class KeysScreen(InfoDialog):
    def __init__(self) -> None:
        super().__init__("Keys", keys_body())


def about_body(device: str, log_path: Path | None) -> object:
    def version(name: str) -> str:
        from importlib import metadata  # noqa: PLC0415 — only when About opens

        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    rows = [
        ("cnn-tui", __version__),
        ("Keras backend", backend.backend_name()),
        ("device", device),
        ("Keras", version("keras") if backend.is_loaded() else f"{version('keras')} (loading…)"),
        ("Python", platform.python_version()),
        ("Textual", version("textual")),
        ("docs", str(REPO_DOCS / "README.md") if (REPO_DOCS / "README.md").exists()
         else "README.md in the cnn-tui repository"),
        ("screenshots", str(REPO_DOCS / "docs" / "screenshots") if (REPO_DOCS / "docs").exists()
         else "docs/screenshots in the cnn-tui repository"),
        ("headless", "cnn-tui --help: the same tasks as commands, for scripts"),
        ("log", str(log_path) if log_path else "terminal (not redirected)"),
    ]
    for key, value in rows:
        table.add_row(key, Text(value))  # paths: plain text, "[x]" is shown as it is
    intro = Text("Build, train, tune and evaluate convolutional image classifiers from the terminal.\n")
    return Group(intro, table)


def keys_body() -> object:
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold", no_wrap=True, justify="right")
    table.add_column()
    table.add_column(style="dim")
    for menu in MENUS:
        table.add_row("", Text(f"{menu} menu", style="bold underline"), "")
        for action in menu_items(menu):
            table.add_row(action.key_label, action.label, action.help)
    table.add_row("", Text("Views and other keys", style="bold underline"), "")
    for _, label, key in VIEWS:
        table.add_row(key, f"{label} view", "")
    for key, label, help_text in (
        ("m / F10", "Menus", "←/→ between menus, Enter runs, Esc closes"),
        ("ctrl+p", "Command palette", "every action by name; says why one is unavailable"),
        ("tab", "Next widget", "move between tables, charts and fields"),
        ("F12", "Snap", "from any screen, dialogs and menus too"),
        ("pgup/pgdn", "Page", "scroll the current view"),
        ("ctrl+q", "Quit", "same as q"),
    ):
        table.add_row(key, label, help_text)
    return table
