"""The "Export model…" dialog: the format, where to write it, and what to check it on.
OK returns the values, Cancel (Escape) nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from cnn_tui.core.params.fields import FieldSpec, parse_text
from cnn_tui.tui.screens.values_dialog import ValuesDialog
from cnn_tui.tui.widgets.form import ParamsForm

FORMATS = ("saved_model", "onnx", "litert")  # as `cnn-tui export --format` names them
SUFFIXES = {"saved_model": "_saved_model", "onnx": ".onnx", "litert": ".tflite"}
TEST_SET, SAMPLE = "the test set", "a built-in digits sample"


def default_out(model: Path, fmt: str) -> str:
    """Beside the model, as the CLI's default: ``model_saved_model``, ``model.onnx``, ``model.tflite``."""
    return str(model.with_name(model.stem + SUFFIXES[fmt]))


class ExportScreen(ValuesDialog):
    """Dismisses with {format, out, check} (``out`` resolved against the working folder), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, model: Path, *, test_set_loaded: bool) -> None:
        super().__init__(classes="dialog-screen")
        self.model = model
        checks = (TEST_SET, SAMPLE) if test_set_loaded else (SAMPLE,)
        self.fields = (
            FieldSpec("format", str, "Format", None, FORMATS[0], choices=FORMATS),
            FieldSpec("out", str, "Write to", None, ""),
            FieldSpec("check", str, "Check it on", None, checks[0], choices=checks),
        )
        self.shown_default = default_out(model, FORMATS[0])

    def compose(self) -> ComposeResult:
        values = {"format": FORMATS[0], "out": self.shown_default, "check": self.fields[2].default}
        with Vertical(id="export-dialog", classes="dialog"):
            yield Label("Export the model", classes="dialog-title")
            yield Label("Keras's model.export, then both models score the same images and their answers are "
                        "compared", classes="dialog-subtitle")
            yield ParamsForm(self.fields, values, id="export-form")
            yield Static("", id="form-notes")
            yield Label("", id="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.update_notes()
        self.query_one(ParamsForm).query(".field-input").first().focus()

    def on_params_form_changed(self, _event: ParamsForm.Changed) -> None:
        texts = self.query_one(ParamsForm).texts()
        if texts["format"] in FORMATS and texts["out"] == self.shown_default:
            # the path still is the default: it follows the format (a typed path is left alone)
            self.shown_default = default_out(self.model, texts["format"])
            if texts["out"] != self.shown_default:
                self.query_one(ParamsForm).set_value("out", self.shown_default)
        self.update_notes()

    def values(self) -> tuple[dict[str, Any] | None, str | None]:
        form = self.query_one(ParamsForm)
        if problems := form.problems():
            return None, next(iter(problems.values()))
        texts = form.texts()
        parsed = {s.name: parse_text(s, texts[s.name]) for s in self.fields}
        out = Path(os.path.expanduser(parsed["out"].strip()))
        return {"format": parsed["format"], "out": out if out.is_absolute() else Path.cwd() / out,
                "check": "test" if parsed["check"] == TEST_SET else "sample"}, None

    def update_notes(self) -> None:
        values, problem = self.values()
        self.query_one("#ok", Button).disabled = values is None
        notes = self.query_one("#form-notes", Static)
        if values is None:
            notes.update(Text(problem or "", style="yellow"))
        else:
            what = "replaces what is there" if values["out"].exists() else "a new file" \
                if values["format"] != "saved_model" else "a new folder"
            notes.update(Text(f"writes {values['out']} ({what})", style="green"))
