"""Textual messages the workers post to the UI thread (``post_message`` is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from cnn_tui.core.events import Event


@dataclass
class EngineEvent(Message):
    """A core event (progress, epoch end, fold end, notice) from ``source``: the name of the task that
    emitted it ("load_train", "evaluate"…), or "startup" / "stop" for a notice from outside a task."""

    source: str
    event: Event


@dataclass
class KerasReady(Message):
    """The background import of Keras finished: ``label`` is backend and device, or ``error`` says why not."""

    label: str
    error: str | None = None


@dataclass
class LogLine(Message):
    """A Python warning or log record that would otherwise have gone to the terminal."""

    text: str
    level: str = "warning"


@dataclass
class RunStarted(Message):
    """A task made its run folder (Snap saves there from now on)."""

    run_dir: Path
