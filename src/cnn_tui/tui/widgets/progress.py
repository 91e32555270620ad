"""A labelled progress row: title, bar, and a line of detail (counts, speed, ETA)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "ETA --:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


class ProgressRow(Horizontal):
    """Never indeterminate (total starts at 1): an animated bar would make snapshots flaky
    and says nothing a count does not."""

    def __init__(self, title: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="progress-row")
        self.title = title

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="progress-title", markup=False)
        yield ProgressBar(total=1, show_eta=False, show_percentage=True)
        yield Label("", classes="progress-detail", markup=False)  # folder names, messages

    detail = ""

    def set(self, done: float, total: float, detail: str = "") -> None:
        self.query_one(ProgressBar).update(total=max(total, 1), progress=min(done, max(total, 1)))
        if detail != self.detail:
            # one line of fixed height in a 1fr column: a new text never changes the layout
            self.query_one(".progress-detail", Label).update(detail, layout=False)
        self.detail = detail

    def reset(self, detail: str = "") -> None:
        self.set(0, 1, detail)
