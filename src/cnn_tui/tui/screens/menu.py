"""The drop-down menus (App, Tasks, Help), opened with m / F10 or a click on the menu bar.

Items whose prerequisites are missing stay in the list, dimmed, and the line under
the list says why, as the seed enables its menu items step by step. Left / Right
move between menus, Enter or an item's own key runs it, Escape closes.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from cnn_tui.tui.actions import MENUS, Action, menu_items

# Column of each menu title on the menu bar (" App ", " Tasks ", " Help ").
MENU_X = {"App": 0, "Tasks": 5, "Help": 12}


class MenuScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape,m,f10", "close", "Close", show=False),
        Binding("left", "switch(-1)", "Previous menu", show=False),
        Binding("right", "switch(1)", "Next menu", show=False),
    ]

    def __init__(self, menu: str, why_not: Callable[[str], str | None]) -> None:
        super().__init__(classes="menu-screen")
        self.menu = menu
        self.why_not = why_not

    def compose(self) -> ComposeResult:
        with Vertical(id="menu-dropdown"):
            yield OptionList(id="menu-options")
            yield Label("", id="menu-description")

    def on_mount(self) -> None:
        self.fill()

    def fill(self) -> None:
        self.items = menu_items(self.menu)
        self.query_one("#menu-dropdown").styles.offset = (MENU_X[self.menu], 1)
        options = self.query_one("#menu-options", OptionList)
        options.clear_options()
        options.add_options([Option(self.render_item(a), id=f"{self.menu}:{a.name}") for a in self.items])
        options.highlighted = 0
        options.focus()
        self.app.query(f"#menu-{self.menu.lower()}").add_class("-open")

    def render_item(self, action: Action) -> Table:
        reason = self.why_not(action.name)
        grid = Table.grid(expand=True)
        grid.add_column(no_wrap=True, ratio=1)
        grid.add_column(justify="right", no_wrap=True)
        style = "dim" if reason else ""
        grid.add_row(Text(action.label, style=style), Text(action.key_label, style="dim" if reason else "bold"))
        return grid

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        action = self.items[event.option_index]
        reason = self.why_not(action.name)
        help_label = self.query_one("#menu-description", Label)
        if reason:
            help_label.update(Text(f"unavailable: {reason}", style="yellow"))
        else:
            help_label.update(Text(action.help, style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.choose(self.items[event.option_index].name)

    def on_key(self, event: events.Key) -> None:
        for action in self.items:
            if event.key == action.key:
                event.stop()
                self.choose(action.name)
                return

    def choose(self, name: str) -> None:
        self.app.query(".menu-title").remove_class("-open")
        self.dismiss(name)

    def action_close(self) -> None:
        self.app.query(".menu-title").remove_class("-open")
        self.dismiss(None)

    def action_switch(self, step: int) -> None:
        self.app.query(".menu-title").remove_class("-open")
        self.menu = MENUS[(MENUS.index(self.menu) + step) % len(MENUS)]
        self.fill()

    def on_click(self, event: events.Click) -> None:
        # a click outside the drop-down closes it, as in desktop menus
        if self.get_widget_at(event.screen_x, event.screen_y)[0] is self:
            self.action_close()
