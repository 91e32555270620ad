"""Helpers for driving the TUI in tests: start it on params files, wait for tasks, read widgets."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from cnn_tui.tui.app import CnnApp

DEVICE = "TensorFlow · CPU"  # fixed, so snapshots do not depend on the machine's GPU


def make_app(data: Path | None = None, hyper: Path | None = None, **kwargs: Any) -> CnnApp:
    kwargs.setdefault("warm_keras", False)  # the workers import Keras when they need it
    kwargs.setdefault("device_label", DEVICE)
    return CnnApp(data=data, hyper=hyper, **kwargs)


async def wait_idle(pilot: Pilot, timeout: float = 120) -> None:
    """Wait until the running task (if any) has ended and its results are shown."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while app.main.session.busy:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still busy with {app.main.session.busy}")
        await asyncio.sleep(0.05)
    await pilot.pause()


async def wait_for(pilot: Pilot, condition: Any, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.02)
    await pilot.pause()


def plain(renderable: Any) -> str:
    """What a Static shows, as plain text (Rich tables rendered at a wide width)."""
    if isinstance(renderable, str):
        return renderable
    if hasattr(renderable, "plain"):
        return renderable.plain
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def text_of(app: CnnApp, selector: str) -> str:
    return plain(app.main.query_one(selector, Static).content)


def status(app: CnnApp) -> str:
    return text_of(app, "#status")


def logged(app: CnnApp) -> str:
    """Every line the status bar showed so far (the Log view holds them with their times)."""
    return "\n".join(text for _, text in app.main.messages)


async def choose_file(pilot: Pilot, path: Path) -> None:
    """Type a path into the open/save dialog that is on screen and confirm it."""
    dialog = pilot.app.screen
    field = dialog.query_one(Input)
    field.value = str(path)
    field.focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def table(app, selector: str) -> DataTable:
    return app.main.query_one(selector, DataTable)


def column_labels(t: DataTable) -> list[str]:
    return [str(c.label) for c in t.columns.values()]


async def open_form(pilot: Pilot, key: str) -> Any:
    """Press the key that opens a params form (h, d, n, N) and return the form screen."""
    from cnn_tui.tui.screens.params_form import ParamsScreen

    await pilot.press(key)
    await pilot.pause()
    assert isinstance(pilot.app.screen, ParamsScreen)
    return pilot.app.screen


def run_record(run_dir: Path) -> dict:
    import json

    return json.loads((Path(run_dir) / "run.json").read_text())


async def wait_run_ended(run_dir: Path, timeout: float = 120) -> dict:
    """Poll a run folder (its process may outlive the app) until run.json says how it ended."""
    from cnn_tui.core.runs.folder import effective_status, read_run

    deadline = time.monotonic() + timeout
    while True:
        record = read_run(Path(run_dir)) or {}
        if record and effective_status(record) != "running":
            return record
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_dir} still running after {timeout}s")
        await asyncio.sleep(0.2)
