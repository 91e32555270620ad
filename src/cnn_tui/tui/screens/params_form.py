"""The data-params and hyper-params dialogs: every field, checked as you type; OK returns the
new params, Cancel (Escape) leaves everything as it was. The hyper-params dialog shows its fields
in sections (network, augmentation, training), only those that apply to the architecture,
optimizer and schedule typed, a line of help about the field with the focus, and, while that
field is an augmentation one, a preview of one training image augmented 8 ways."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from cnn_tui.core.errors import UserError
from cnn_tui.core.params.fields import DATA_FIELDS, HYPER_FIELDS, HYPER_GROUPS, FieldSpec
from cnn_tui.core.params.files import LARGE_GRID, DataParams, HyperParams
from cnn_tui.tui.screens.values_dialog import ValuesDialog
from cnn_tui.tui.widgets.augment_preview import AugmentPreview
from cnn_tui.tui.widgets.form import ParamsForm, help_text

FOLDER_FIELDS = ("train_dir", "test_dir", "result_dir")


class ParamsScreen(ValuesDialog):
    """``kind`` is "data" or "hyper"; dismisses with DataParams / HyperParams, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "browse", "Browse folder", show=True),
    ]

    def __init__(self, kind: str, params: Any, *, title: str, values: dict[str, str] | None = None,
                 sample: Callable[[], Any] | None = None) -> None:
        """``sample``: called in a worker thread, it gives the image the augmentation preview draws (or None)."""
        super().__init__(classes="dialog-screen")
        self.kind = kind
        self.params = params
        self.title_text = title
        self.initial_texts = values
        self.sample = sample or (lambda: None)

    def compose(self) -> ComposeResult:
        specs = DATA_FIELDS if self.kind == "data" else HYPER_FIELDS
        values = self.initial_texts or (self.params.as_text() if self.params is not None else {})
        hyper = self.kind == "hyper"
        if hyper:
            subtitle = "several values in a field (0.02,0.01) are tuned; training uses the first"
        else:
            subtitle = "relative folders are read from the folder of the JSON file · ctrl+o browses for a folder"
        with Vertical(id="params-dialog", classes="dialog -tall" if hyper else "dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)  # may name a file
            yield Label(subtitle, classes="dialog-subtitle")
            # a hyper field left empty is a mistake (a data field left empty takes its default)
            yield ParamsForm(specs, values, id=f"{self.kind}-form", groups=HYPER_GROUPS if hyper else (),
                             empty_ok=not hyper)
            if hyper:
                yield Static("", id="field-help")
                preview = AugmentPreview(self.sample, id="augment-preview")
                preview.display = False
                yield preview
            yield Static("", id="form-notes")
            yield Label("", id="form-error", markup=False)  # problems quote values: "[1, 2]"
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.update_notes()
        self.query_one(ParamsForm).query(".field-input").first().focus()

    def on_params_form_changed(self, _event: ParamsForm.Changed) -> None:
        self.update_notes()
        form = self.query_one(ParamsForm)
        if self.kind == "hyper" and (spec := form.focused_spec()) is not None:
            self.show_help(spec)

    def on_params_form_focused(self, event: ParamsForm.Focused) -> None:
        if self.kind == "hyper":
            self.show_help(event.spec)

    def show_help(self, spec: FieldSpec) -> None:
        """The focused field's help (or its problem), and the preview while it is an augmentation field."""
        form = self.query_one(ParamsForm)
        problem = form.problem(spec)
        line = Text(problem, style="red") if problem else Text.assemble((f"{spec.name}: ", "bold"), help_text(spec))
        self.query_one("#field-help", Static).update(line)
        preview = self.query_one(AugmentPreview)
        shown = spec.group == "augmentation"
        if shown != preview.display:
            preview.display = shown
            focused = self.focused
            if focused is not None:  # the form is shorter or taller now: keep the field in sight
                self.call_after_refresh(form.scroll_to_widget, focused, animate=False)
        if shown:
            preview.schedule(form.texts())

    def update_notes(self) -> None:
        form = self.query_one(ParamsForm)
        problems = form.problems()
        self.query_one("#ok", Button).disabled = bool(problems)
        notes = self.query_one("#form-notes", Static)
        if problems:
            first = next(iter(problems.values()))  # in full: the row beside the field may cut it short
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            notes.update(Text(f"to fix before OK: {first}{more}", style="red"))
            return
        try:
            built = self.build(form.texts())
        except UserError as exc:
            notes.update(Text(str(exc), style="red"))
            self.query_one("#ok", Button).disabled = True
            return
        notes.update(self.describe(built))

    def build(self, texts: dict[str, str]) -> Any:
        if self.kind == "data":
            return DataParams.from_text(texts, base=self.params)
        return HyperParams.from_text(texts, base=self.params)

    def describe(self, built: Any) -> Text:
        """What these values mean: folders found, or the size of the tuning grid."""
        if self.kind == "hyper":
            grid = built.grid()
            count = built.combination_count()
            sizes = " × ".join(str(len(v)) for v in grid.values())
            text = Text(f"Tuning grid: {sizes} = {count} combinations" if grid else
                        "Tuning grid: 1 combination (no field holds several values)")
            if count > LARGE_GRID:
                text.append(" · large: each combination trains once per fold", style="yellow")
            return text
        text = Text()
        for name, label in (("train_dir", "training"), ("test_dir", "testing")):
            path = built.resolve(getattr(built, name))
            text.append(f"{label}: ")
            text.append_text(folder_note(path, built.num_classes))
            text.append("\n")
        return text

    def values(self) -> tuple[Any, str | None]:
        """The params the form's texts make (OK returns them), or the first problem."""
        form = self.query_one(ParamsForm)
        problems = form.problems()
        if problems:
            return None, next(iter(problems.values()))
        try:
            return self.build(form.texts()), None
        except UserError as exc:
            return None, str(exc)

    def action_browse(self) -> None:
        focused = self.focused
        name = (focused.id or "").removeprefix("field-") if focused is not None else ""
        if self.kind != "data" or name not in FOLDER_FIELDS:
            self.notify("ctrl+o browses for a folder: move to a folder field first (Tab)", severity="warning")
            return
        from textual_fspicker import SelectDirectory  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

        base = self.params.base_dir if self.params is not None else Path.cwd()
        current = focused.value.strip() if isinstance(focused, Input) else ""
        start = (base / current) if current and (base / current).is_dir() else base

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one(ParamsForm).set_value(name, os.path.relpath(path, base))

        self.app.push_screen(SelectDirectory(start, title="Choose the folder"), chosen)


def folder_note(path: Path, num_classes: int) -> Text:
    """'10 class folders' in green, or what is wrong with the folder in yellow (not blocking:
    the folder may be filled later; loading says exactly what is wrong)."""
    # CSV of pixels, CIFAR batches: named here, checked when loading
    from cnn_tui.core.data import sources  # noqa: PLC0415 — numpy: not before the first frame

    if not path.exists():
        return Text(f"{path} does not exist yet", style="yellow")
    if not path.is_dir():
        if sources.is_source_file(path):
            kind = "a CSV file of pixels" if path.suffix.lower() == ".csv" else "a CIFAR batch"
            return Text(f"{path} is {kind}", style="green")
        return Text(f"{path} is not a folder", style="yellow")
    try:
        entries = list(os.scandir(path))
        classes = sum(1 for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        return Text(f"{path}: cannot read ({exc.strerror})", style="yellow")
    if not classes and sources.has_batches([e.name for e in entries]):
        return Text(f"CIFAR batches in {path}", style="green")
    style = "green" if classes == num_classes else "yellow"
    extra = "" if classes == num_classes else f" (num_classes is {num_classes})"
    return Text(f"{classes} class folders in {path}{extra}", style=style)

