"""Data params and hyper params: load, validate, save (seed-compatible JSON).

Both files are flat JSON objects. Every field is described once in the
``FieldSpec`` table of ``core.params.fields``, which drives loading, validation, saving,
``ModelConfig`` and the TUI forms. A new option is one optional row there (its default
is the seed app's behaviour, so files without it load as before) plus its use.

Hyper-param values may be scalars or lists. Training uses the first value; every
list-valued field joins the tuning grid. A loaded file is saved back in the
same shape (a scalar stays a scalar, a list stays a list).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from cnn_tui.core import fileio
from cnn_tui.core.architectures import SHAPE_FIELDS, architecture
from cnn_tui.core.errors import ParamsError
from cnn_tui.core.params.fields import (
    DATA_FIELDS,
    HYPER_FIELDS,
    HYPER_NAMES,
    SEED_NAMES,
    FieldSpec,
    coerce_scalar,
    coerce_values,
    format_text,
    parse_text,
)

_HYPER_BY_NAME = {f.name: f for f in HYPER_FIELDS}

# A grid larger than this is worth a confirmation before tuning starts.
LARGE_GRID = 64


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


class ModelConfig:
    """One concrete set of hyper params: what a single training run (or one tuning fit) uses.

    Every field of ``HYPER_FIELDS`` is an attribute; a field not given takes its default,
    so configurations recorded by older versions (fewer fields) still make a whole one.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - _HYPER_BY_NAME.keys()
        if unknown:
            raise TypeError(f"unknown hyper params: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "_values", {f.name: values.get(f.name, f.scalar_default) for f in HYPER_FIELDS})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """The known fields of ``values`` (e.g. a model file's record); others are ignored."""
        return cls(**{k: v for k, v in values.items() if k in _HYPER_BY_NAME})

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ModelConfig is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelConfig) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if v != _HYPER_BY_NAME[k].scalar_default}
        return f"ModelConfig({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __reduce__(self) -> tuple:
        return (_config_from_items, (tuple(self._values.items()),))

    def replace(self, **changes: Any) -> ModelConfig:
        return ModelConfig(**{**self._values, **changes})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def applies(self, name: str) -> bool:
        """Whether a field is used by this configuration (momentum only with sgd, ...)."""
        condition = _HYPER_BY_NAME[name].shown_if
        return condition is None or self._values[condition[0]] in condition[1]


def _config_from_items(items: tuple) -> ModelConfig:
    return ModelConfig(**dict(items))


def check_config(config: ModelConfig) -> None:
    """Combinations of fields that cannot work together, in one line naming the fields."""
    if config.reduce_on_plateau and config.schedule != "constant":
        raise ParamsError(f"reduce_on_plateau needs schedule constant (a {config.schedule} schedule sets the rate "
                          "itself); set schedule to constant or reduce_on_plateau to 0")
    if config.warmup_epochs and config.warmup_epochs >= config.epochs:
        raise ParamsError(f"warmup_epochs {config.warmup_epochs} must be fewer than epochs {config.epochs}")


@dataclass(frozen=True)
class HyperParams:
    """Hyper params as the user wrote them: each field a scalar or a list of values.

    ``values`` holds the fields the file (or form) gave; a field left out takes its
    default, and saving writes back only what was given, so a seed file stays a seed file.
    """

    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: Path | None = None

    @classmethod
    def defaults(cls) -> HyperParams:
        """The seed app's defaults: its ten fields, some with two values to tune."""
        return cls({name: _HYPER_BY_NAME[name].default for name in SEED_NAMES})

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | None = None) -> HyperParams:
        if not isinstance(data, dict):
            raise ParamsError(f"hyper params must be a JSON object, got a {type(data).__name__}", path=source)
        values, extra, warnings = _parse_fields(data, HYPER_FIELDS, "hyper params", source)
        ordered = {name: values[name] for name in data if name in values}  # the file's order, kept on save
        for name, value in ordered.items():
            if isinstance(value, list) and len(unique_values(value)) < len(value):
                warnings.append(f"hyper params: {name} lists a value more than once; tuning tries each value once")
        hyper = cls(ordered, extra, (), source)
        try:
            check_config(hyper.first())
        except ParamsError as exc:
            raise ParamsError(f"hyper params: {exc.message}", path=source) from None
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
        """Build from form text fields; raise ``ParamsError`` naming every bad field.

        A field the form did not show keeps the base's value; one shown at its default
        and not in the base stays out of the file."""
        problems, values = [], {}
        given = base.values if base else {}
        for spec in HYPER_FIELDS:
            if spec.name not in texts:
                if spec.name in given:
                    values[spec.name] = given[spec.name]
                continue
            try:
                value = parse_text(spec, texts[spec.name])
            except ValueError as exc:
                problems.append(f"{spec.name} {exc}")
                continue
            if spec.name in given or spec.name in SEED_NAMES or value != spec.scalar_default:
                values[spec.name] = value
        if problems:
            raise ParamsError("hyper params: " + "; ".join(problems))
        order = [*given, *(n for n in HYPER_NAMES if n not in given)]  # the base file's order first
        hyper = cls({n: values[n] for n in order if n in values}, dict(base.extra) if base else {}, (),
                    base.source if base else None)
        check_config(hyper.first())
        return hyper

    def to_dict(self) -> dict[str, Any]:
        return {**self.values, **self.extra}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return fileio.write_json(path, self.to_dict())

    def value_list(self, name: str) -> list[Any]:
        value = self.values[name] if name in self.values else _HYPER_BY_NAME[name].scalar_default
        return list(value) if isinstance(value, list) else [value]

    def value(self, name: str) -> Any:
        """The field as written (scalar or list), or its default."""
        return self.values[name] if name in self.values else _HYPER_BY_NAME[name].scalar_default

    def first(self) -> ModelConfig:
        """The configuration training uses: the first value of every field."""
        return ModelConfig(**{name: self.value_list(name)[0] for name in HYPER_NAMES})

    def grid(self) -> dict[str, list[Any]]:
        """The tuning grid: every field that holds more than one distinct value, each once; a field
        no listed architecture (optimizer, schedule) uses does not multiply the grid."""
        lists = {name: unique_values(self.value_list(name)) for name in HYPER_NAMES if self.shown(name)}
        return {name: values for name, values in lists.items() if len(values) > 1}

    def combination_count(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def combinations(self) -> Iterator[dict[str, Any]]:
        grid = self.grid()
        for combo in product(*grid.values()):
            yield dict(zip(grid, combo))

    def config(self, overrides: dict[str, Any] | None = None) -> ModelConfig:
        """The first-value configuration with some fields replaced (one grid point)."""
        return self.first().replace(**(overrides or {}))

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
        hyper = replace(self, values=merged, warnings=())
        check_config(hyper.first())
        return hyper

    def shown(self, name: str) -> bool:
        """Whether a form shows the field: it applies to some value of the field it depends on."""
        condition = _HYPER_BY_NAME[name].shown_if
        return condition is None or any(v in condition[1] for v in self.value_list(condition[0]))

    def as_text(self) -> dict[str, str]:
        """Every field as a form shows it (defaults for those the file leaves out)."""
        return {name: format_text(self.value(name)) for name in HYPER_NAMES}


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
    labels_csv: str = ""
    images_dir: str = ""
    path_column: str = ""
    label_column: str = ""
    split_column: str = ""
    group_column: str = ""
    group_pattern: str = ""
    val_dir: str = ""
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
        labelled = isinstance(data.get("labels_csv"), str) and bool(data["labels_csv"].strip())
        if labelled:  # the CSV names the images: the folders may be left out
            data = {"train_dir": "", "test_dir": "", **data}
        values, extra, warnings = _parse_fields(data, DATA_FIELDS, "data params", source)
        for name in ("train_dir", "test_dir"):
            if not values[name].strip() and not labelled:
                raise ParamsError(f"data params: {name} is empty; give a folder", path=source)
        if pattern := values.get("group_pattern"):
            _check_group_pattern(pattern, source)
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
        labelled = bool(texts.get("labels_csv", "").strip())  # the folders may then be left empty
        for spec in DATA_FIELDS:
            text = texts.get(spec.name, "")
            if (not spec.required or (labelled and spec.name in ("train_dir", "test_dir"))) and text.strip() == "":
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
    def labels_csv_path(self) -> Path | None:
        return self.resolve(self.labels_csv) if self.labels_csv else None

    @property
    def images_path(self) -> Path | None:
        """The folder a labels CSV's paths are relative to: ``images_dir``, else the CSV's folder."""
        if self.images_dir:
            return self.resolve(self.images_dir)
        return self.labels_csv_path.parent if self.labels_csv_path else None

    @property
    def val_path(self) -> Path | None:
        return self.resolve(self.val_dir) if self.val_dir else None

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
            "train_dir": folder(self.train_dir) if self.train_dir else "",
            "test_dir": folder(self.test_dir) if self.test_dir else "",
            "image_size": self.image_size,
        }
        if self.result_dir is not None:
            out["result_dir"] = folder(self.result_dir)
        for spec in DATA_FIELDS:
            if spec.required or spec.name == "result_dir":
                continue
            value = getattr(self, spec.name)
            if spec.name in ("labels_csv", "images_dir", "val_dir") and value:
                value = folder(value)
            if spec.name in self.present or value != spec.default:
                out[spec.name] = value
        return {**out, **self.extra}

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return fileio.write_json(path, self.to_dict(relative_to=path.parent))

    def with_values(self, **updates: Any) -> DataParams:
        data = {**self.to_dict(), **updates}
        return DataParams.from_dict(data, base_dir=self.base_dir, source=self.source)


def _check_group_pattern(pattern: str, source: Path | None) -> None:
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise ParamsError(f"data params: group_pattern is not a regular expression ({exc})", path=source) from None
    if groups < 1:
        raise ParamsError("data params: group_pattern needs a group in parentheses, the group id: e.g. ^(P\\d+)_",
                          path=source)


def check_grid_fits(data: DataParams, hyper: HyperParams) -> None:
    """``check_fits`` for every combination of the fields that decide a network's shape."""
    lists = {name: unique_values(hyper.value_list(name)) for name in SHAPE_FIELDS}
    for combo in product(*lists.values()):
        check_fits(data, hyper.config(dict(zip(lists, combo))))


def check_fits(data: DataParams, config: ModelConfig) -> None:
    """Refuse hyper params that cannot work on images of this size (the architecture says why)."""
    check_config(config)
    architecture(config.architecture).check(config, data.image_size)
