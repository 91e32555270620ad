"""The two top lines: the menu bar (App, Tasks, Help; app name; backend and device) and the
info bar (loaded files, model state, datasets)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, Static

from cnn_tui.tui.actions import MENUS


class MenuTitle(Label):
    """One clickable menu name."""

    @dataclass
    class Clicked(Message):
        menu: str

    def __init__(self, menu: str) -> None:
        super().__init__(f" {menu} ", id=f"menu-{menu.lower()}", classes="menu-title")
        self.menu = menu

    def on_click(self) -> None:
        self.post_message(self.Clicked(self.menu))


class MenuBar(Horizontal):
    def compose(self) -> ComposeResult:
        for menu in MENUS:
            yield MenuTitle(menu)
        yield Label(" m menu ", classes="menu-hint")
        yield Label("cnn-tui", id="app-name")
        yield Label("loading Keras…", id="device", markup=False)  # may be an error message

    def set_device(self, text: str, *, error: bool = False) -> None:
        label = self.query_one("#device", Label)
        label.update(text)
        label.set_class(error, "-error")


class InfoBar(Static):
    """data and hyper params file names, model state and loaded datasets, in one line."""

    def show(self, *, data: str | None, hyper: str | None, model: str, train: int | None, test: int | None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")

        def part(name: str, value: str | None, missing: str) -> None:
            if text:
                text.append(" │ ", style="dim")
            text.append(f"{name} ", style="dim")
            text.append(value or missing, style="bold" if value else "italic dim")

        part("data", data, "none")
        part("hyper", hyper, "none")
        part("model", model if model != "no model" else None, "none")
        part("images", f"{train:,} train" if train is not None else None, "no training set")
        if test is not None:
            text.append(f", {test:,} test", style="bold")
        if text != getattr(self, "shown", None):
            self.shown = text
            self.update(text, layout=False)  # one line of fixed height: no layout pass needed


class StatusLine(Static):
    """The last thing that happened, coloured by how much it matters."""

    STYLES = {"info": "", "success": "green", "warning": "yellow", "error": "bold red"}

    def say(self, text: str, level: str = "info") -> None:
        # one line of fixed height: no layout pass needed
        self.update(Text(text, style=self.STYLES.get(level, ""), no_wrap=True, overflow="ellipsis"), layout=False)
