"""File dialogs (textual-fspicker), rooted where the user's params live: ``app_input/``.

textual-fspicker is imported when a dialog first opens, not with the main screen."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

KINDS = {
    "data": ("Data params", ".json"),
    "hyper": ("Hyper params", ".json"),
    "model": ("Keras model", ".keras"),
    "image": ("Image", ""),  # any format Pillow opens
}


def start_folder(preferred: Path | None = None) -> Path:
    """The folder of the current file, else ``./app_input`` when present, else here."""
    if preferred is not None and preferred.is_dir():
        return preferred
    inputs = Path.cwd() / "app_input"
    return inputs if inputs.is_dir() else Path.cwd()


def _filters(kind: str) -> Any:
    from textual_fspicker import Filters  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

    _, suffix = KINDS[kind]
    if kind == "image":
        from cnn_tui.core.data.decode import image_extensions  # noqa: PLC0415 — numpy: not before the first frame

        known = image_extensions()
        return Filters(("images", lambda p: p.suffix.lower() in known), ("all files", lambda _p: True))
    return Filters((f"*{suffix}", lambda p: p.suffix.lower() == suffix), ("all files", lambda _p: True))


@cache
def _picking_file_open() -> type:
    """textual-fspicker's FileOpen, where Enter (or a click) on a file in the list picks it; its own
    only copies the name into the box, for a second Enter. The box still takes a typed path."""
    from textual import on  # noqa: PLC0415 — defined with the widget library it extends, loaded when a dialog first opens
    from textual.widgets import Button  # noqa: PLC0415 — as above
    from textual_fspicker import FileOpen  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame
    from textual_fspicker.parts import DirectoryNavigation  # noqa: PLC0415 — as above

    class PickingFileOpen(FileOpen):
        @on(DirectoryNavigation.Selected)
        def _select_file(self, event: DirectoryNavigation.Selected) -> None:
            super()._select_file(event)
            self.query_one("#select", Button).press()

    return PickingFileOpen


def open_dialog(kind: str, folder: Path | None = None) -> Any:
    name, _ = KINDS[kind]
    return _picking_file_open()(start_folder(folder), title=f"Load {name.lower()}", filters=_filters(kind))


def save_dialog(kind: str, folder: Path | None = None, default: str | None = None) -> Any:
    from textual_fspicker import FileSave  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

    name, _ = KINDS[kind]
    return FileSave(start_folder(folder), title=f"Save {name.lower()}", filters=_filters(kind), default_file=default)
