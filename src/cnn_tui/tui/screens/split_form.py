"""The "Split a folder…" dialog: the folder to split, where to write, the shares, the seed and
whether to link or copy; checked as you type. OK returns the values, Cancel (Escape) nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from cnn_tui.core.params.fields import FieldSpec, parse_text
from cnn_tui.tui.screens.values_dialog import ValuesDialog
from cnn_tui.tui.widgets.form import ParamsForm


def _share(low_open: bool) -> Any:
    def check(value: float) -> str | None:
        fine = (0 < value < 1) if low_open else (0 <= value < 1)
        return None if fine else f"must be {'above' if low_open else 'at least'} 0 and below 1, got {value:g}"

    return check


SPLIT_FIELDS = (
    FieldSpec("folder", str, "Folder to split", None, ""),
    FieldSpec("out", str, "Output folder (new/empty)", None, ""),
    FieldSpec("test", float, "Test share", _share(True), 0.2),
    FieldSpec("val", float, "Validation share", _share(False), 0.0),
    FieldSpec("seed", int, "Random seed", lambda v: None if v >= 0 else f"must be at least 0, got {v}", 42),
    FieldSpec("files", str, "Files", None, "hard links", choices=("hard links", "copies")),
)
FOLDER_FIELDS = ("folder", "out")


class SplitScreen(ValuesDialog):
    """Dismisses with {folder, out, test, val, seed, copy} (folders resolved against ``base``), or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "browse", "Browse folder", show=True),
    ]

    def __init__(self, base: Path, folder: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.base = base
        self.folder = folder

    def compose(self) -> ComposeResult:
        values = {s.name: "" if s.default is None else str(s.default) for s in SPLIT_FIELDS}
        values["folder"] = self.folder
        with Vertical(id="split-dialog", classes="dialog"):
            yield Label("Split a folder into training and testing", classes="dialog-title")
            yield Label("stratified by class · originals are never moved or changed · "
                        "ctrl+o browses for a folder", classes="dialog-subtitle")
            yield ParamsForm(SPLIT_FIELDS, values, id="split-form")
            yield Static("", id="form-notes")
            yield Label("", id="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Split", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.update_notes()
        self.query_one(ParamsForm).query(".field-input").first().focus()

    def on_params_form_changed(self, _event: ParamsForm.Changed) -> None:
        self.update_notes()

    def values(self) -> tuple[dict[str, Any] | None, str | None]:
        """The parsed values, or the first problem."""
        form = self.query_one(ParamsForm)
        if problems := form.problems():
            return None, next(iter(problems.values()))
        texts = form.texts()
        parsed = {s.name: parse_text(s, texts[s.name]) for s in SPLIT_FIELDS}
        if parsed["test"] + parsed["val"] >= 1:
            return None, f"the test and validation shares ({parsed['test']:g} + {parsed['val']:g}) leave nothing for training"
        folder = self.resolve(parsed["folder"])
        out = self.resolve(parsed["out"])
        if not folder.is_dir():
            return None, f"{folder} is not a folder"
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            return None, f"{out} is not empty; choose a new or empty folder"
        return {"folder": folder, "out": out, "test": parsed["test"], "val": parsed["val"], "seed": parsed["seed"],
                "copy": parsed["files"] == "copies"}, None

    def resolve(self, text: str) -> Path:
        path = Path(os.path.expanduser(text.strip()))
        return path if path.is_absolute() else self.base / path

    def update_notes(self) -> None:
        notes = self.query_one("#form-notes", Static)
        try:
            values, problem = self.values()
        except OSError as exc:
            values, problem = None, f"cannot read a folder ({exc.strerror or exc})"
        self.query_one("#ok", Button).disabled = values is None
        if values is None:
            notes.update(Text(problem or "", style="yellow"))
            return
        parts = "training/, validation/ and testing/" if values["val"] else "training/ and testing/"
        how = "copies" if values["copy"] else "hard links (copies where the file system has none)"
        notes.update(Text(f"writes {parts} into {values['out']} as {how}, and data_params.json", style="green"))

    def action_browse(self) -> None:
        focused = self.focused
        name = (focused.id or "").removeprefix("field-") if focused is not None else ""
        if name not in FOLDER_FIELDS:
            self.notify("ctrl+o browses for a folder: move to a folder field first (Tab)", severity="warning")
            return
        from textual_fspicker import SelectDirectory  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

        current = focused.value.strip() if isinstance(focused, Input) else ""
        start = self.resolve(current) if current and self.resolve(current).is_dir() else self.base

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one(ParamsForm).set_value(name, os.path.relpath(path, self.base))

        self.app.push_screen(SelectDirectory(start, title="Choose the folder"), chosen)
