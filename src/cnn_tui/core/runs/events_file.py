"""A run's event stream: ``events.jsonl`` in its folder, one JSON object per line.

The process that runs a run writes every event it emits here (flushed line by
line; batch progress is already throttled to ten a second by its emitter).
Anyone else reads it: the TUI and ``cnn-tui attach`` replay it from the start and
then follow it as it grows. A reader only ever takes whole lines, so the file of
a process killed in the middle of a write is read up to its last whole line.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnn_tui.core import events
from cnn_tui.core.fileio import json_default, without_nan

EVENTS_FILE = "events.jsonl"
KINDS: dict[str, type] = {cls.__name__: cls for cls in events.EVENT_TYPES}


def encode(event: Any) -> str:
    body = {"type": type(event).__name__, "time": round(time.time(), 3), **dataclasses.asdict(event)}
    # NaN (a diverged loss) is not JSON: it travels as null
    return json.dumps(without_nan(body), default=json_default, allow_nan=False)


def decode(line: str) -> Any | None:
    """The event on one line, or None for a line this version does not know (newer or damaged)."""
    try:
        body = json.loads(line)
        kind = KINDS[body.pop("type")]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in body.items() if k in names})
    except TypeError:
        return None


class EventWriter:
    """An ``emit`` that appends each event to the run's events file (thread-safe)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / EVENTS_FILE
        self._lock = threading.Lock()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run's lifetime
        self.failed = False
        self.error: OSError | None = None  # why the file stopped being written

    def __call__(self, event: Any) -> None:
        line = encode(event) + "\n"
        with self._lock:
            if self._handle is None or self.failed:
                return
            try:
                self._handle.write(line)
                self._handle.flush()
            except OSError as exc:
                self.failed, self.error = True, exc  # a full disk must not end the run; run.json still says how it ends

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                try:
                    self._handle.close()
                except OSError:
                    pass
                self._handle = None


class EventReader:
    """Reads a growing events file: each call returns the events of the lines completed since."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / EVENTS_FILE
        self.offset = 0
        self._partial = b""

    def read(self) -> list[Any]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        found = []
        for raw in lines:
            event = decode(raw.decode("utf-8", errors="replace")) if raw.strip() else None
            if event is not None:
                found.append(event)
        return found


def read_events(folder: Path) -> list[Any]:
    """Every whole event a run has written so far."""
    return EventReader(folder).read()


def tee(*emitters: Any) -> Any:
    """One ``emit`` that hands each event to several."""
    def emit(event: Any) -> None:
        for target in emitters:
            target(event)

    return emit


def follow(folder: Path, *, alive: Any, interval: float = 0.05, stop: threading.Event | None = None) -> Iterator[Any]:
    """Every event of the run, then new ones as they come, until ``alive()`` is False and the file
    holds nothing more (or ``stop`` is set). Polls: ``interval`` bounds the delay."""
    reader = EventReader(folder)
    while True:
        batch = reader.read()
        yield from batch
        if stop is not None and stop.is_set():
            return
        if not batch:
            if not alive():
                yield from reader.read()  # what was written between the last read and the end
                return
            if stop is not None:
                stop.wait(interval)
            else:
                time.sleep(interval)

