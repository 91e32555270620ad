"""A dialog that returns checked values: OK (or Enter in a field) dismisses with ``values()``
when they are valid and shows the problem otherwise; Cancel or Escape dismisses with None."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ValuesDialog(ModalScreen[Any]):
    """Subclasses compose an ``#ok`` button and a ``#form-error`` label, and define
    ``values() -> (values, None) | (None, problem)``: what OK returns (a dict of values, a params
    object), or why it cannot."""

    values: Callable[[], tuple[Any, str | None]]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_ok()
        else:
            self.action_cancel()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_ok()

    def action_ok(self) -> None:
        values, problem = self.values()
        if values is None:
            self.query_one("#form-error", Label).update(problem or "")
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
