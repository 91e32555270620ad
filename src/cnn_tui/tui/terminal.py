"""What the terminal can draw images with, asked once while the app is still importing.

textual-image asks the terminal itself when first imported: one query at a time, each
waiting up to 0.1 s, and the Kitty graphics query always waits that long in terminals
that ignore it (xterm, VTE, tmux). It must also ask before Textual reads stdin. So
``launch`` sends all three questions at once as its first step (Kitty graphics, cell size
in pixels, then device attributes, which every terminal answers, last), imports the app
while the answers travel, and reads them just before Textual starts. textual-image is then
imported only when the first sample image is shown, told the cell size, and kept from
asking again.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any

KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_SIZE_QUERY = "\x1b[16t"
ATTRIBUTES_QUERY = "\x1b[c"
ANSWER_WAIT = 0.35  # seconds after asking; a local terminal answers in a millisecond, SSH in a round trip

_ATTRIBUTES = re.compile(r"\x1b\[\?([0-9;]*)c")
_CELL_SIZE = re.compile(r"\x1b\[6;([0-9]+);([0-9]+)t")
_KITTY = re.compile(r"\x1b_Gi=31;([^\x1b]*)\x1b\\")


@dataclass(frozen=True)
class Graphics:
    protocol: str | None  # "sixel", "tgp", "halfcell"; None: no previews
    cell_size: tuple[int, int]  # (width, height) of a cell in pixels
    problem: str = ""  # why previews are off


GRAPHICS: Graphics | None = None  # set by ``Probe.finish`` in a real terminal; None in tests and pipes
_import_lock = threading.Lock()


def parse(answers: str, *, cell_size: tuple[int, int] | None) -> Graphics:
    """The protocol and cell size from the terminal's answers (textual-image's order: Sixel, then Kitty)."""
    if cell_size is None:
        match = _CELL_SIZE.search(answers)
        cell_size = (int(match.group(2)), int(match.group(1))) if match else (10, 20)  # textual-image's default
    attributes = _ATTRIBUTES.search(answers)
    kitty = _KITTY.search(answers)
    if attributes and "4" in attributes.group(1).split(";"):
        protocol = "sixel"
    elif kitty and kitty.group(1).endswith("OK"):
        protocol = "tgp"
    else:
        protocol = "halfcell"
    return Graphics(protocol, cell_size)


class Probe:
    """Ask at ``start``, read the answers at ``finish``; the terminal echoes nothing in between."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: Any = None
        self.asked_at = 0.0
        self.cell_size: tuple[int, int] | None = None
        self.result: Graphics | None = None

    @classmethod
    def start(cls) -> Probe:
        probe = cls()
        stdin, stdout = sys.__stdin__, sys.__stdout__
        try:
            if not (stdin and stdout and stdin.isatty() and stdout.isatty()):
                return probe

            rows, columns, width, height = struct.unpack(
                "HHHH", fcntl.ioctl(stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8))
            if not rows or not columns:
                probe.result = Graphics(None, (10, 20), "the terminal reports a size of 0×0")
                return probe
            if width and height:
                probe.cell_size = (width // columns, height // rows)
            fd = stdin.fileno()
            probe.saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)  # no echo of the answers, no waiting for a newline
            probe.fd = fd
            stdout.write(KITTY_QUERY + ("" if probe.cell_size else CELL_SIZE_QUERY) + ATTRIBUTES_QUERY)
            stdout.flush()
            probe.asked_at = time.perf_counter()
        except (OSError, ValueError, AttributeError) as exc:
            probe.close()
            probe.result = Graphics("halfcell", (10, 20), f"could not ask the terminal ({exc})")
        return probe

    def finish(self) -> Graphics | None:
        """Read the answers (waiting at most ``ANSWER_WAIT`` after asking), restore the terminal,
        and publish the result in ``GRAPHICS``; None when there was no terminal to ask."""
        global GRAPHICS
        if self.fd is not None:
            answers = ""
            deadline = max(self.asked_at + ANSWER_WAIT, time.perf_counter() + 0.02)
            try:
                while not _ATTRIBUTES.search(answers):
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                        break
                    chunk = os.read(self.fd, 4096)
                    if not chunk:
                        break
                    answers += chunk.decode("latin-1")
            except OSError:
                pass
            finally:
                self.close()
            self.result = parse(answers, cell_size=self.cell_size)
        GRAPHICS = self.result
        return self.result

    def close(self) -> None:
        if self.fd is not None and self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
            except (OSError, termios.error):
                pass
        self.fd = None


class _NotATerminal:
    """Stands in for ``sys.__stdout__`` while textual-image is imported, so it does not ask again."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def image_module() -> Any:
    """``textual_image.widget``, imported on first use (thread-safe). After a probe, textual-image is
    given the cell size and imported as if there were no terminal, so it asks nothing."""
    with _import_lock:
        if "textual_image.widget" not in sys.modules and GRAPHICS is not None:
            from textual_image import _terminal  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

            _terminal.get_cell_size._result = _terminal.CellSize(*GRAPHICS.cell_size)  # type: ignore[attr-defined]
            saved = sys.__stdout__
            sys.__stdout__ = _NotATerminal(saved)  # type: ignore[misc]
            try:
                import textual_image.widget  # noqa: F401, PLC0415 — imported (never used here) while stdout is no terminal, so it probes nothing
            finally:
                sys.__stdout__ = saved  # type: ignore[misc]
        import textual_image.widget as widget  # noqa: PLC0415 — a widget library loaded when its view first opens, not for the first frame

        return widget
