"""The environment variables cnn-tui reads: one table (the CLI's --help prints it) and readers
that turn a bad value into one line naming the variable, instead of a traceback."""

from __future__ import annotations

import os

from cnn_tui.core.errors import UserError

# (name, what it sets) — every variable the program reads
VARIABLES: tuple[tuple[str, str], ...] = (
    ("KERAS_BACKEND", "tensorflow (default), jax or torch"),
    ("CNN_TUI_CACHE", "0 turns the decoded-image cache off (as --no-cache does)"),
    ("CNN_TUI_CACHE_DIR", "where the decoded-image cache lives (default: the platform's cache folder, "
                          "~/.cache/cnn-tui/images on Linux)"),
    ("CNN_TUI_CACHE_MAX_MB", "the cache's size limit in MB (default 4096)"),
    ("CNN_TUI_WORKERS", "decoding worker processes (default: the CPUs this process may use, "
                        "container CPU quotas included)"),
    ("CNN_TUI_STREAM_ABOVE_MB", "stream a set from disk when its float32 array exceeds this many MB "
                                "(default: half the free memory, or of the container's memory limit when lower)"),
    ("CNN_TUI_MAX_COMBINATIONS", "the largest tuning grid accepted (default 1000; random search samples any grid)"),
    ("CNN_TUI_KEPT_NETWORKS_MIB", "memory a tuning process may keep built networks in, for hyperband's next "
                                  "round to go on training them without building them again (default 512)"),
    ("CNN_TUI_LOG", "the TUI's log file (default: the platform's log folder, "
                    "~/.local/state/cnn-tui/log/tui.log on Linux)"),
    ("CNN_TUI_CONFIG_DIR", "where settings.json (the TUI's theme) lives (default ~/.config/cnn-tui on Linux)"),
    ("CNN_TUI_IMAGES", "image previews in the TUI: auto (default), none, or a way to draw them: "
                       "halfcell, unicode, sixel, tgp"),
    ("CNN_TUI_SYSTEM_SAMPLE_SECONDS", "seconds between a run's samples of its GPUs, CPU and memory "
                                      "(default 1; 0 turns them off)"),
    ("CNN_TUI_DEBUG_IMPORT", "1 lets TensorFlow's C++ libraries log to stderr while they load (hidden by default)"),
)


def env_int(name: str, default: int | None, *, low: int = 0) -> int | None:
    """An integer variable, ``default`` when unset or empty; a bad value is a ``UserError``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"environment variable {name} must be a whole number, got {text!r}") from None
    if value < low:
        raise UserError(f"environment variable {name} must be at least {low}, got {value}")
    return value


def env_seconds(name: str, default: float) -> float:
    """A non-negative number of seconds, ``default`` when unset or empty; a bad value is a ``UserError``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"environment variable {name} must be a number of seconds, got {text!r}") from None
    if not value >= 0:  # NaN too
        raise UserError(f"environment variable {name} must be 0 or more, got {text}")
    return value


def env_flag(name: str, default: bool) -> bool:
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UserError(f"environment variable {name} must be 1 or 0 (true/false, yes/no, on/off), got {text!r}")
