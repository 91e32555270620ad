"""Questions: yes / no (large tuning grid, quitting while a task runs) and one of several answers
(quitting while a run goes: leave it running, stop it, or stay)."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, question: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.question, self.yes, self.no = title, question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.question, id="confirm-question", markup=False)  # may hold paths and run names
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with several answers, each a button with a key; ``default`` has the focus (enter picks it),
    escape answers None."""

    BINDINGS = [Binding("escape", "choose(None)", "Cancel")]

    def __init__(self, title: str, question: str, choices: list[tuple[str, str, str]], *, default: str,
                 width: int | None = None) -> None:
        """``choices``: (answer, label, key) in the order shown; ``width``: of the dialog, for many buttons."""
        super().__init__(classes="dialog-screen")
        self.title_text, self.question, self.choices, self.default = title, question, choices, default
        self.width = width

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            if self.width:
                dialog.styles.width = self.width
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.question, id="confirm-question", markup=False)
            # more buttons than fit at their minimum width (16, and a margin of 2): each as wide as its label
            narrow = self.width is not None and 18 * len(self.choices) > self.width - 4
            with Horizontal(classes="dialog-buttons"):
                for answer, label, key in self.choices:
                    button = Button(f"{label} ({key})", variant="primary" if answer == self.default else "default",
                                    id=f"choice-{answer}", compact=True)
                    if narrow:
                        button.styles.min_width = len(label) + 6
                    yield button

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self.default}", Button).focus()

    def on_key(self, event: events.Key) -> None:
        for answer, _, key in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(answer)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id).removeprefix("choice-"))

    def action_choose(self, answer: str | None) -> None:
        self.dismiss(answer)
