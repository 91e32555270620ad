"""Data params and hyper params: load, validate, save (seed-compatible JSON).

Both files are flat JSON objects. Every field is described once in a
``FieldSpec`` table, which drives loading, validation, saving and the TUI
forms, so a new optional field (augmentation, early stopping, ...) is one line
here and defaults to the seed app's behaviour.

Hyper-param values may be scalars or lists. Training uses the first value; every
list-valued field joins the tuning grid. A loaded file is saved back in the
same shape (a scalar stays a scalar, a list stays a list).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any, Callable, Iterator

from cnn_tui.core import fileio
from cnn_tui.core.errors import ParamsError

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class FieldSpec:
    """One JSON field: its type, the range it must lie in, and how forms show it."""

    name: str
    kind: type  # int, float or str
    label: str
    check: Check | None = None
    default: Any = None
    required: bool = True
    listable: bool = False  # may hold several values (tuning)
    choices: tuple[str, ...] = ()


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low:g}, got {v:g}"


def _between(low: float, high: float, *, closed_high: bool = False, closed_low: bool = True) -> Check:
    left, right = ("[" if closed_low else "("), ("]" if closed_high else ")")

    def check(v: float) -> str | None:
        ok_low = v >= low if closed_low else v > low
        ok_high = v <= high if closed_high else v < high
        return None if ok_low and ok_high else f"must be in {left}{low:g}, {high:g}{right}, got {v:g}"

    return check


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be greater than 0, got {v:g}"


HYPER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("init_rate", float, "Initial rate", _positive, [0.02, 0.01], listable=True),
    FieldSpec("decay_steps", int, "Decay steps", _at_least(1), 400, listable=True),
    FieldSpec("decay_rate", float, "Decay rate", _between(0, 1, closed_low=False, closed_high=True), 0.9, listable=True),
    FieldSpec("kernel_size", int, "Kernel size", _at_least(1), 3, listable=True),
    FieldSpec("num_filters", int, "Num filters", _at_least(1), [32, 40], listable=True),
    FieldSpec("num_units", int, "Num units", _at_least(1), [512, 800], listable=True),
    FieldSpec("momentum", float, "Momentum", _between(0, 1), 0.9, listable=True),
    FieldSpec("drop_out", float, "Drop out", _between(0, 1), 0.2, listable=True),
    FieldSpec("epochs", int, "Epochs", _at_least(1), [5, 10], listable=True),
    FieldSpec("batch_size", int, "Batch size", _at_least(1), [64, 80], listable=True),
)

COLOR_MODES = ("auto", "grayscale", "rgb")

DATA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("num_classes", int, "Number of classes", _at_least(2), 10),
    FieldSpec("train_dir", str, "Training folder", None, ""),
    FieldSpec("test_dir", str, "Testing folder", None, ""),
    FieldSpec("image_size", int, "Image size", _between(4, 2048, closed_high=True), 28),
    FieldSpec("result_dir", str, "Results folder", None, None, required=False),
    # Optional fields the seed does not have; their defaults are its behaviour.
    FieldSpec("color_mode", str, "Colour mode", None, "auto", required=False, choices=COLOR_MODES),
    FieldSpec("validation_split", float, "Validation fraction", _between(0, 1, closed_low=False), 0.2, required=False),
    FieldSpec("seed", int, "Random seed", _at_least(0), 42, required=False),
)

HYPER_NAMES = tuple(f.name for f in HYPER_FIELDS)
_HYPER_BY_NAME = {f.name: f for f in HYPER_FIELDS}
_DATA_BY_NAME = {f.name: f for f in DATA_FIELDS}

# A grid larger than this is worth a confirmation before tuning starts.
LARGE_GRID = 64
# No field has a use for numbers beyond this; bigger ones would overflow float formatting.
MAX_NUMBER = 2**31 - 1


# ---------------------------------------------------------------- value parsing


def coerce_scalar(spec: FieldSpec, value: Any) -> Any:
    """Return ``value`` as the field's type, or raise ``ValueError`` saying why."""
    if spec.kind is str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {_show(value)}")
        if spec.choices and value not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if spec.kind is int else "a number"
        raise ValueError(f"must be {kind}, got {_show(value)}")
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        raise ValueError(f"is far too large, got {_show(value)}")
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError(f"must be a finite number of sensible size, got {value}")
    if spec.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"must be a whole number, got {value:g}")
        value = int(value)
    else:
        value = float(value)
    if spec.check and (problem := spec.check(value)):
        raise ValueError(problem)
    return value


def coerce_values(spec: FieldSpec, value: Any) -> list[Any]:
    """Validate a hyper field that may be a scalar or a list; return the list of values."""
    if isinstance(value, list):
        if not spec.listable:
            raise ValueError(f"must be a single value, got a list {_show(value)}")
        if not value:
            raise ValueError("is an empty list; give at least one value")
        return [coerce_scalar(spec, item) for item in value]
    return [coerce_scalar(spec, value)]


def parse_text(spec: FieldSpec, text: str) -> Any:
    """Parse what a person typed in a form: ``0.02, 0.01`` for list fields, one value otherwise.

    Returns a scalar for one value and a list for several, as the JSON would hold them.
    """
    parts = [p.strip() for p in text.split(",")] if spec.listable else [text.strip()]
    if any(p == "" for p in parts):
        raise ValueError("is empty" if len(parts) == 1 else "has an empty value between commas")
    values = [_parse_number(spec, p) for p in parts]
    checked = [coerce_scalar(spec, v) for v in values]
    return checked[0] if len(checked) == 1 else checked


def format_text(value: Any) -> str:
    """The inverse of ``parse_text``: how a value is shown in a form."""
    if isinstance(value, list):
        return ",".join(format_text(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_number(spec: FieldSpec, text: str) -> Any:
    if spec.kind is str:
        return text
    try:
        return int(text) if spec.kind is int else float(text)
    except ValueError:
        try:
            as_float = float(text)  # "5.0" for an int field is fine, "ten" is not
        except ValueError:
            kind = "a whole number" if spec.kind is int else "a number"
            raise ValueError(f"must be {kind}, got {text!r}") from None
        return as_float


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{what} file not found", path=path) from None
    except IsADirectoryError:
        raise ParamsError(f"is a folder, not a {what} file", path=path) from None
    except UnicodeDecodeError:
        raise ParamsError(f"not a text file, so not {what} JSON", path=path) from None
    except OSError as exc:
        raise ParamsError(f"cannot read ({exc.strerror})", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamsError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path=path) from None
    except RecursionError:
        raise ParamsError("not valid JSON (nested too deeply)", path=path) from None
    if not isinstance(data, dict):
        raise ParamsError(f"{what} must be a JSON object {{...}}, got a {type(data).__name__}", path=path)
    return data


def _parse_fields(
    data: dict[str, Any], specs: tuple[FieldSpec, ...], what: str, path: Path | None
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Validate ``data`` against ``specs``: (known values, unknown fields, warnings)."""
    by_name = {s.name: s for s in specs}
    problems: list[str] = []
    values: dict[str, Any] = {}
    missing = [s.name for s in specs if s.required and s.name not in data]
    if missing:
        problems.append(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    for name, raw in data.items():
        spec = by_name.get(name)
        if spec is None:
            continue
        try:
            values[name] = coerce_values(spec, raw) if spec.listable else coerce_scalar(spec, raw)
            if spec.listable and not isinstance(raw, list):
                values[name] = values[name][0]
            elif spec.listable:
                values[name] = list(values[name])
        except ValueError as exc:
            problems.append(f"{name} {exc}")
    if problems:
        prefix = "" if path else f"{what}: "
        raise ParamsError(prefix + "; ".join(problems), path=path)
    unknown = {k: v for k, v in data.items() if k not in by_name}
    warnings = []
    if unknown:
        names = ", ".join(sorted(unknown))
        warnings.append(f"{what}: unknown field{'s' if len(unknown) > 1 else ''} kept but not used: {names}")
    return values, unknown, warnings


# ---------------------------------------------------------------- hyper params


def unique_values(values: list[Any]) -> list[Any]:
    """The values in their order, each once (``[0.02, 0.02]`` is one value to tune)."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


@dataclass(frozen=True)
class ModelConfig:
    """One concrete set of hyper params: what a single training run uses."""

    init_rate: float
    decay_steps: int
    decay_rate: float
    kernel_size: int
    num_filters: int
    num_units: int
    momentum: float
    drop_out: float
    epochs: int
    batch_size: int

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HYPER_NAMES}


@dataclass(frozen=True)
class HyperParams:
    """Hyper params as the user wrote them: each field a scalar or a list of values."""

    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: Path | None = None

    @classmethod
    def defaults(cls) -> HyperParams:
        return cls({f.name: f.default for f in HYPER_FIELDS})

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | None = None) -> HyperParams:
        if not isinstance(data, dict):
            raise ParamsError(f"hyper params must be a JSON object, got a {type(data).__name__}", path=source)
        values, extra, warnings = _parse_fields(data, HYPER_FIELDS, "hyper params", source)
        ordered = {name: values[name] for name in HYPER_NAMES}
        for name, value in ordered.items():
            if isinstance(value, list) and len(unique_values(value)) < len(value):
                warnings.append(f"hyper params: {name} lists a value more than once; tuning tries each value once")
        hyper = cls(ordered, extra, (), source)
        if (count := hyper.combination_count()) > LARGE_GRID:
            warnings.append(
                f"hyper params: the tuning grid has {count:,} combinations ({count * 3:,} fits with 3 folds); "
                "consider fewer values, or the random strategy (it samples the grid)"
            )
        return replace(hyper, warnings=tuple(warnings))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HyperParams:
        path = Path(path)
        return cls.from_dict(_read_json_object(path, "hyper params"), source=path)

    @classmethod
    def from_text(cls, texts: dict[str, str], base: HyperParams | None = None) -> HyperParams:
        """Build from form text fields; raise ``ParamsError`` naming every bad field."""
        problems, values = [], {}
        for spec in HYPER_FIELDS:
            try:
                values[spec.name] = parse_text(spec, texts.get(spec.name, ""))
            except ValueError as exc:
                problems.append(f"{spec.name} {exc}")
        if problems:
            raise ParamsError("hyper params: " + "; ".join(problems))
        extra = dict(base.extra) if base else {}
        return cls(values, extra, (), base.source if base else None)

    def to_dict(self) -> dict[str, Any]:
        return {**self.values, **self.extra}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return fileio.write_json(path, self.to_dict())

    def value_list(self, name: str) -> list[Any]:
        value = self.values[name]
        return list(value) if isinstance(value, list) else [value]

    def first(self) -> ModelConfig:
        """The configuration training uses: the first value of every field."""
        return ModelConfig(**{name: self.value_list(name)[0] for name in HYPER_NAMES})

    def grid(self) -> dict[str, list[Any]]:
        """The tuning grid: every field that holds more than one distinct value, each once."""
        lists = {name: unique_values(self.value_list(name)) for name in HYPER_NAMES}
        return {name: values for name, values in lists.items() if len(values) > 1}

    def combination_count(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def combinations(self) -> Iterator[dict[str, Any]]:
        grid = self.grid()
        for combo in product(*grid.values()):
            yield dict(zip(grid, combo))

    def config(self, overrides: dict[str, Any] | None = None) -> ModelConfig:
        """The first-value configuration with some fields replaced (one grid point)."""
        return replace(self.first(), **(overrides or {}))

    def with_values(self, updates: dict[str, Any]) -> HyperParams:
        """A copy with fields replaced (validated), e.g. to apply the best tuning combination."""
        merged = dict(self.values)
        for name, value in updates.items():
            spec = _HYPER_BY_NAME.get(name)
            if spec is None:
                raise ParamsError(f"hyper params: unknown field {name}")
            try:
                checked = coerce_values(spec, value)
            except ValueError as exc:
                raise ParamsError(f"hyper params: {name} {exc}") from None
            merged[name] = checked if isinstance(value, list) else checked[0]
        return replace(self, values=merged, warnings=())

    def as_text(self) -> dict[str, str]:
        return {name: format_text(self.values[name]) for name in HYPER_NAMES}


# ---------------------------------------------------------------- data params


@dataclass(frozen=True)
class DataParams:
    """Where the images are and how to read them.

    Relative folders resolve against ``base_dir``: the folder holding the JSON
    file, or the working directory for params made in the app.
    """

    num_classes: int
    train_dir: str
    test_dir: str
    image_size: int
    result_dir: str | None = None
    color_mode: str = "auto"
    validation_split: float = 0.2
    seed: int = 42
    base_dir: Path = field(default_factory=Path.cwd)
    extra: dict[str, Any] = field(default_factory=dict)
    present: frozenset[str] = frozenset()  # optional fields the file held, written back on save
    warnings: tuple[str, ...] = ()
    source: Path | None = None

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base_dir: Path | None = None, source: Path | None = None
    ) -> DataParams:
        if not isinstance(data, dict):
            raise ParamsError(f"data params must be a JSON object, got a {type(data).__name__}", path=source)
        values, extra, warnings = _parse_fields(data, DATA_FIELDS, "data params", source)
        for name in ("train_dir", "test_dir"):
            if not values[name].strip():
                raise ParamsError(f"data params: {name} is empty; give a folder", path=source)
        optional = {s.name for s in DATA_FIELDS if not s.required}
        return cls(
            **values,
            base_dir=(base_dir or Path.cwd()).resolve(),
            extra=extra,
            present=frozenset(optional & values.keys()),
            warnings=tuple(warnings),
            source=source,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataParams:
        path = Path(path)
        return cls.from_dict(_read_json_object(path, "data params"), base_dir=path.parent, source=path)

    @classmethod
    def from_text(cls, texts: dict[str, str], base: DataParams | None = None) -> DataParams:
        """Build from form text fields; raise ``ParamsError`` naming every bad field."""
        data: dict[str, Any] = {}
        problems = []
        for spec in DATA_FIELDS:
            text = texts.get(spec.name, "")
            if not spec.required and text.strip() == "":
                continue
            try:
                data[spec.name] = parse_text(spec, text)
            except ValueError as exc:
                problems.append(f"{spec.name} {exc}")
        if problems:
            raise ParamsError("data params: " + "; ".join(problems))
        return cls.from_dict(
            {**(base.extra if base else {}), **data}, base_dir=base.base_dir if base else None
        )

    def as_text(self) -> dict[str, str]:
        return {spec.name: format_text(getattr(self, spec.name)) for spec in DATA_FIELDS}

    def resolve(self, folder: str) -> Path:
        path = Path(os.path.expanduser(folder))
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def train_path(self) -> Path:
        return self.resolve(self.train_dir)

    @property
    def test_path(self) -> Path:
        return self.resolve(self.test_dir)

    @property
    def results_path(self) -> Path:
        """Parent folder of run folders: ``result_dir`` if given, else ``results/`` here."""
        return self.resolve(self.result_dir) if self.result_dir else Path.cwd() / "results"

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The JSON form. Relative folders are rewritten relative to ``relative_to``."""

        def folder(text: str) -> str:
            if relative_to is None or Path(os.path.expanduser(text)).is_absolute():
                return text
            return os.path.relpath(self.resolve(text), relative_to.resolve())

        out: dict[str, Any] = {
            "num_classes": self.num_classes,
            "train_dir": folder(self.train_dir),
            "test_dir": folder(self.test_dir),
            "image_size": self.image_size,
        }
        if self.result_dir is not None:
            out["result_dir"] = folder(self.result_dir)
        for spec in DATA_FIELDS:
            if spec.required or spec.name == "result_dir":
                continue
            value = getattr(self, spec.name)
            if spec.name in self.present or value != spec.default:
                out[spec.name] = value
        return {**out, **self.extra}

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return fileio.write_json(path, self.to_dict(relative_to=path.parent))

    def with_values(self, **updates: Any) -> DataParams:
        data = {**self.to_dict(), **updates}
        return DataParams.from_dict(data, base_dir=self.base_dir, source=self.source)


def check_grid_fits(data: DataParams, hyper: HyperParams) -> None:
    """``check_fits`` for every kernel size a tuning search would try."""
    for kernel in hyper.value_list("kernel_size"):
        check_fits(data, hyper.config({"kernel_size": kernel}))


def check_fits(data: DataParams, config: ModelConfig) -> None:
    """Refuse hyper params that cannot work on images of this size."""
    pooled = data.image_size // 2  # the second convolution sees the image after one 2x2 pooling
    if pooled // 2 < 1:
        raise ParamsError(f"image_size {data.image_size} is too small for two 2x2 poolings; use at least 4")
    if config.kernel_size > pooled:
        raise ParamsError(
            f"kernel_size {config.kernel_size} is larger than the {pooled}x{pooled} image the second "
            f"convolution sees (image_size {data.image_size} after 2x2 pooling); use at most {pooled}"
        )
