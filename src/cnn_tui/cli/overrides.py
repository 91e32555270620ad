"""``--set FIELD=VALUE``: change one data or hyper params field for one run, without editing the file.

The field is looked up in the params field tables when the command runs (the tables gain fields
over time; nothing here lists them), the value is parsed the way a form parses it (``0.02,0.01``
is a list for a field that can be tuned) and the params are validated as a file would be.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cnn_tui.core.errors import ParamsError, UserError
from cnn_tui.core.params import fields, files


def parse_set(item: str) -> tuple[str, str]:
    """``"epochs=3"`` -> ``("epochs", "3")``; the value may itself hold ``=``."""
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise UserError(f"--set takes FIELD=VALUE (e.g. --set epochs=3), got {item!r}")
    return name.strip(), value.strip()


def _field(name: str, *, hyper: bool) -> tuple[str, fields.FieldSpec]:
    """("data" or "hyper", the field's spec); a name in neither table is a one-line mistake."""
    data_fields = {spec.name: spec for spec in fields.DATA_FIELDS}
    hyper_fields = {spec.name: spec for spec in fields.HYPER_FIELDS}
    if name in data_fields:
        return "data", data_fields[name]
    if name in hyper_fields:
        if not hyper:
            raise UserError(f"--set {name}: a hyper params field, and this command reads no hyper params")
        return "hyper", hyper_fields[name]
    known = sorted(data_fields) + (sorted(hyper_fields) if hyper else [])
    raise UserError(f"--set {name}: no such field; fields: {', '.join(known)}")


def apply_sets(items: Sequence[str] | None, data: files.DataParams,
               hyper: files.HyperParams | None) -> tuple[files.DataParams, files.HyperParams | None]:
    """The params with every ``--set`` applied in order (a later one wins), validated."""
    data_updates: dict[str, Any] = {}
    hyper_updates: dict[str, Any] = {}
    for item in items or ():
        name, text = parse_set(item)
        kind, spec = _field(name, hyper=hyper is not None)
        try:
            value = fields.parse_text(spec, text)
        except ValueError as exc:
            raise UserError(f"--set {name}: {exc}") from None
        if kind == "data":
            if spec.kind is str and name.endswith("_dir"):
                # a folder typed on the command line is relative to where the command runs,
                # not to the data params file's folder
                value = os.path.abspath(os.path.expanduser(value))
            data_updates[name] = value
        else:
            hyper_updates[name] = value
    try:
        if data_updates:
            data = data.with_values(**data_updates)
        if hyper_updates and hyper is not None:
            hyper = hyper.with_values(hyper_updates)
    except ParamsError as exc:
        raise UserError(f"--set: {exc.message}") from None
    return data, hyper
