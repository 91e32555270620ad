"""The TUI's settings between sessions (the theme): ``settings.json`` in the platform's config
folder (``core.places.config_folder``). A missing or unreadable file is the defaults; a failed
write is logged, never shown as an error (a setting is not worth interrupting anyone)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cnn_tui.core import fileio
from cnn_tui.core.errors import UserError
from cnn_tui.core.fileio import read_json_object
from cnn_tui.core.places import config_folder

FILE = "settings.json"


def settings_path() -> Path:
    return config_folder() / FILE


def read_settings() -> dict[str, Any]:
    return read_json_object(settings_path()) or {}


def remember(**values: Any) -> None:
    """Merge ``values`` into the settings file (written atomically)."""
    settings = read_settings()
    if all(settings.get(k) == v for k, v in values.items()):
        return
    try:
        fileio.write_json(settings_path(), {**settings, **values})
    except (OSError, UserError) as exc:
        logging.getLogger("cnn_tui.tui").warning("cannot save the settings (%s)", exc)
