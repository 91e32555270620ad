"""A form generated from the params field table (``core.params.FieldSpec``): one row per field
with its label, an input, and the problem with what was typed, checked as you type."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select

from cnn_tui.core.params import FieldSpec, parse_text


class FieldRow(Horizontal):
    def __init__(self, spec: FieldSpec, value: str) -> None:
        super().__init__(classes="field-row", id=f"row-{spec.name}")
        self.spec = spec
        self.value = value

    def compose(self) -> ComposeResult:
        spec = self.spec
        suffix = " (csv)" if spec.listable else ("" if spec.required else " (optional)")
        yield Label(spec.label + suffix, classes="field-label")
        if spec.choices:
            yield Select([(c, c) for c in spec.choices], value=self.value or spec.choices[0], allow_blank=False,
                         compact=True, id=f"field-{spec.name}", classes="field-input")
        else:
            placeholder = "e.g. 0.02,0.01" if spec.listable and spec.kind is float else ""
            yield Input(self.value, placeholder=placeholder, compact=True, id=f"field-{spec.name}",
                        classes="field-input", select_on_focus=False)
        yield Label("", classes="field-error", id=f"error-{spec.name}", markup=False)  # quotes what was typed


class ParamsForm(VerticalScroll):
    """Emits ``ParamsForm.Changed`` after every keystroke with the current problems."""

    @dataclass
    class Changed(Message):
        form: ParamsForm

    def __init__(self, specs: tuple[FieldSpec, ...], values: dict[str, str], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="params-form")
        self.specs = specs
        self.initial = values

    def compose(self) -> ComposeResult:
        for spec in self.specs:
            yield FieldRow(spec, self.initial.get(spec.name, ""))

    def on_mount(self) -> None:
        for spec in self.specs:
            self.check(spec)

    def texts(self) -> dict[str, str]:
        out = {}
        for spec in self.specs:
            widget = self.query_one(f"#field-{spec.name}")
            out[spec.name] = str(widget.value) if isinstance(widget, Select) else widget.value
        return out

    def check(self, spec: FieldSpec) -> str | None:
        text = self.texts()[spec.name]
        problem = None
        if spec.required or text.strip():
            try:
                parse_text(spec, text)
            except ValueError as exc:
                problem = f"{spec.name} {exc}"
        label = self.query_one(f"#error-{spec.name}", Label)
        label.update(problem or "")
        self.query_one(f"#row-{spec.name}").set_class(problem is not None, "-invalid")
        return problem

    def problems(self) -> dict[str, str]:
        return {s.name: p for s in self.specs if (p := self.check(s))}

    def set_value(self, name: str, value: str) -> None:
        self.query_one(f"#field-{name}", Input).value = value

    def on_input_changed(self, event: Input.Changed) -> None:
        self._changed(event.input.id)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select.id)

    def _changed(self, widget_id: str | None) -> None:
        name = (widget_id or "").removeprefix("field-")
        for spec in self.specs:
            if spec.name == name:
                self.check(spec)
        self.post_message(self.Changed(self))
