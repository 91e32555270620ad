"""Where cnn-tui keeps its own files: the platform's folders for them (XDG on Linux, ~/Library on
macOS, %LOCALAPPDATA% on Windows, from ``platformdirs``), each overridable by an environment
variable (the table in ``core.environment``)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "cnn-tui"


def _dirs() -> object:
    import platformdirs  # noqa: PLC0415 — small, but only when a folder is asked for

    return platformdirs.PlatformDirs(APP, appauthor=False)


def cache_folder() -> Path:
    """The decoded-image cache's parent (``~/.cache/cnn-tui`` on Linux)."""
    return Path(_dirs().user_cache_dir)  # type: ignore[attr-defined]


def log_folder() -> Path:
    """The TUI's log (``~/.local/state/cnn-tui/log`` on Linux)."""
    return Path(_dirs().user_log_dir)  # type: ignore[attr-defined]


def config_folder() -> Path:
    """``$CNN_TUI_CONFIG_DIR``, else the platform's (``~/.config/cnn-tui`` on Linux): settings.json."""
    if configured := os.environ.get("CNN_TUI_CONFIG_DIR", "").strip():
        return Path(configured).expanduser()
    return Path(_dirs().user_config_dir)  # type: ignore[attr-defined]
