"""A form generated from the params field table (``core.params.fields.FieldSpec``): one row per field
with its label, an input, and the problem with what was typed, checked as you type.

With ``groups`` (the hyper params) the rows come in sections under a heading each, and a field
whose ``shown_if`` names another field is shown only while that field holds one of the listed
values (any of them, when it holds several for tuning), re-evaluated as you type. A field with
choices that may hold several values (tuning) is a text input that completes the choice being
typed and steps through the choices with ↑ ↓; one that holds a single value is a drop-down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Label, Select

from cnn_tui.core.params.fields import FieldSpec, format_text, parse_text

BOOL_CHOICES = ("true", "false")
KIND_WORDS = {int: "a whole number", float: "a number"}


def choices_of(spec: FieldSpec) -> tuple[str, ...]:
    """The words a field takes, for completion and ↑ ↓: its choices, or true/false."""
    return spec.choices or (BOOL_CHOICES if spec.kind is bool else ())


def help_text(spec: FieldSpec) -> str:
    """One line about a field: what it does, what it takes."""
    parts = []
    choices = choices_of(spec)
    if choices:
        parts.append(" | ".join(choices) + (" (↑ ↓ pick)" if spec.listable else ""))
    elif not spec.help:
        parts.append(KIND_WORDS.get(spec.kind, "text"))
    if spec.help:
        parts.append(spec.help)
    if spec.scalar_default is not None and spec.scalar_default != "":
        parts.append(f"default {format_text(spec.scalar_default)}")
    return " · ".join(parts)


class ChoiceSuggester(Suggester):
    """Completes the last comma-separated word with the first choice it starts."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.choices = choices

    async def get_suggestion(self, value: str) -> str | None:
        last = value.rpartition(",")[2].lstrip()
        if not last:
            return None
        for choice in self.choices:
            if choice.startswith(last) and choice != last:
                return value + choice[len(last):]
        return None


class ChoiceInput(Input):
    """A text input for a field with choices that may hold several (``seed_cnn,cnn``): ↑ ↓ replace
    the word under the end of the text with the previous / next choice."""

    BINDINGS = [
        Binding("down", "step(1)", "Next choice", show=False),
        Binding("up", "step(-1)", "Previous choice", show=False),
    ]

    def __init__(self, value: str, choices: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(value, suggester=ChoiceSuggester(choices), **kwargs)
        self.choices = choices

    def action_step(self, step: int) -> None:
        head, comma, last = self.value.rpartition(",")
        word = last.strip()
        index = self.choices.index(word) + step if word in self.choices else (0 if step > 0 else -1)
        self.value = head + comma + self.choices[index % len(self.choices)]
        self.cursor_position = len(self.value)


class FieldRow(Horizontal):
    def __init__(self, spec: FieldSpec, value: str, *, mark_lists: bool = True) -> None:
        """``mark_lists``: "(csv)" after the labels of fields that take several values (not when all do)."""
        super().__init__(classes="field-row", id=f"row-{spec.name}")
        self.spec = spec
        self.value = value
        self.mark_lists = mark_lists

    def compose(self) -> ComposeResult:
        spec = self.spec
        suffix = (" (csv)" if self.mark_lists else "") if spec.listable else ("" if spec.required else " (optional)")
        yield Label(spec.label + suffix, classes="field-label")
        common = {"id": f"field-{spec.name}", "classes": "field-input", "compact": True}
        if spec.choices and not spec.listable:
            field: Any = Select([(c, c) for c in spec.choices], value=self.value or spec.choices[0],
                                allow_blank=False, **common)
        elif choices_of(spec):
            field = ChoiceInput(self.value, choices_of(spec), select_on_focus=False, **common)
        else:
            placeholder = "e.g. 0.02,0.01" if spec.listable and spec.kind is float else ""
            field = Input(self.value, placeholder=placeholder, select_on_focus=False, **common)
        if spec.help:
            field.tooltip = spec.help
        yield field
        yield Label("", classes="field-error", id=f"error-{spec.name}", markup=False)  # quotes what was typed


class ParamsForm(VerticalScroll):
    """Emits ``ParamsForm.Changed`` after every keystroke, and ``ParamsForm.Focused`` when a field
    takes the focus. ``texts``, ``problems`` and ``check`` cover the fields shown."""

    @dataclass
    class Changed(Message):
        form: ParamsForm

    @dataclass
    class Focused(Message):
        form: ParamsForm
        spec: FieldSpec

    def __init__(self, specs: tuple[FieldSpec, ...], values: dict[str, str], *, id: str | None = None,  # noqa: A002
                 groups: tuple[str, ...] = (), empty_ok: bool = True) -> None:
        """``empty_ok``: an optional field may be left empty (it then takes its default)."""
        super().__init__(id=id, classes="params-form")
        self.empty_ok = empty_ok
        self.specs = specs
        self.initial = values
        self.groups = groups
        # the fields others depend on: changing one shows or hides rows
        self.conditions = {s.shown_if[0] for s in specs if s.shown_if}
        self.by_name = {s.name: s for s in specs}

    def compose(self) -> ComposeResult:
        mark_lists = not all(s.listable for s in self.specs)
        if not self.groups:
            for spec in self.specs:
                yield FieldRow(spec, self.initial.get(spec.name, ""), mark_lists=mark_lists)
            return
        for group in self.groups:
            yield Label(group.capitalize(), classes="form-section", id=f"section-{group}")
            for spec in self.specs:
                if spec.group == group:
                    yield FieldRow(spec, self.initial.get(spec.name, ""), mark_lists=mark_lists)

    def on_mount(self) -> None:
        self.update_shown()
        for spec in self.specs:
            self.check(spec)

    # ------------------------------------------------------------ which fields apply

    def values_of(self, name: str) -> list[Any]:
        """What a field holds now (each listed value), leniently: the words typed when invalid."""
        spec, text = self.by_name[name], self.raw_text(name)
        try:
            value = parse_text(spec, text)
        except ValueError:
            return [part.strip() for part in text.split(",")]
        return value if isinstance(value, list) else [value]

    def applies(self, spec: FieldSpec) -> bool:
        if spec.shown_if is None or spec.shown_if[0] not in self.by_name:
            return True
        name, wanted = spec.shown_if
        return any(value in wanted for value in self.values_of(name))

    def shown_specs(self) -> list[FieldSpec]:
        return [s for s in self.specs if self.applies(s)]

    def update_shown(self) -> None:
        for spec in self.specs:
            self.query_one(f"#row-{spec.name}").display = self.applies(spec)

    # ------------------------------------------------------------ values and problems

    def raw_text(self, name: str) -> str:
        widget = self.query_one(f"#field-{name}")
        return str(widget.value) if isinstance(widget, Select) else widget.value

    def texts(self) -> dict[str, str]:
        """The text of every field shown (a hidden one keeps what the params held)."""
        return {spec.name: self.raw_text(spec.name) for spec in self.shown_specs()}

    def problem(self, spec: FieldSpec) -> str | None:
        text = self.raw_text(spec.name)
        if not (spec.required or not self.empty_ok or text.strip()):
            return None
        try:
            parse_text(spec, text)
        except ValueError as exc:
            return f"{spec.name} {exc}"
        return None

    def check(self, spec: FieldSpec) -> str | None:
        problem = self.problem(spec) if self.applies(spec) else None
        self.query_one(f"#error-{spec.name}", Label).update(problem or "")
        self.query_one(f"#row-{spec.name}").set_class(problem is not None, "-invalid")
        return problem

    def problems(self) -> dict[str, str]:
        return {s.name: p for s in self.specs if (p := self.check(s))}

    def set_value(self, name: str, value: str) -> None:
        widget = self.query_one(f"#field-{name}")
        widget.value = value

    def focused_spec(self) -> FieldSpec | None:
        focused = self.screen.focused if self.is_attached else None
        name = (focused.id or "").removeprefix("field-") if focused is not None else ""
        return self.by_name.get(name)

    # ------------------------------------------------------------ events

    def on_input_changed(self, event: Input.Changed) -> None:
        self._changed(event.input.id)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._changed(event.select.id)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        name = (event.widget.id or "").removeprefix("field-")
        if name in self.by_name:
            self.post_message(self.Focused(self, self.by_name[name]))

    def _changed(self, widget_id: str | None) -> None:
        name = (widget_id or "").removeprefix("field-")
        if name in self.conditions:
            self.update_shown()
            for spec in self.specs:
                self.check(spec)
        elif name in self.by_name:
            self.check(self.by_name[name])
        self.post_message(self.Changed(self))
