"""Atomic file writes: a temp file beside the target, then a rename; and the one reader of small
JSON files (run.json, task.json, params beside a run, settings).

A process killed mid-write leaves the previous file intact. Temp names start
with ``.`` and end in ``.partial`` so no loader ever mistakes them for real
files (hidden files are skipped everywhere).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import ResultsError

TEMP_SUFFIX = ".partial"
STALE_SECONDS = 600  # an older temp file beside a target was left by a killed writer


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any worker threads
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _mode_for(target: Path) -> int:
    """The mode a plain ``open()`` would give: mkstemp's 0600 would hide saved models and params
    from the rest of a team on a shared server. Overwriting keeps the file's own mode."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success rename it over ``target``.

    ``suffix`` keeps an extension some writers insist on (Keras wants ``.keras``).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX + suffix, dir=target.parent)
        os.fchmod(fd, _mode_for(target))
        os.close(fd)
    except OSError as exc:
        raise ResultsError(f"cannot write here ({exc.strerror or exc})", path=target) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise ResultsError(f"cannot write ({exc.strerror or exc})", path=target) from exc
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)
    _sweep_leftovers(target)


def _sweep_leftovers(target: Path) -> None:
    """Remove temp files of earlier writes to ``target`` that a killed process left behind."""
    cutoff = time.time() - STALE_SECONDS
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*{TEMP_SUFFIX}*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# What a terminal would act on rather than show: C0 controls but tab and newline (ESC begins every
# escape sequence; BEL ends an OSC title; backspace and carriage return overwrite), DEL, the C1
# controls (U+009B is a CSI on its own), the bidirectional overrides and isolates that reorder what
# is shown ("abc\u202etxt.exe"), and the surrogates of bytes that are not UTF-8.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ONE_LINE = {"\n": "\\n", "\t": "\\t"}
EXCERPT = 60  # characters of a value from a file that a message quotes


def _escaped(char: str) -> str:
    if char == "\r":
        return "\\r"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape holds it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def readable(text: str) -> str:
    """``text`` as valid UTF-8 that shows as itself: a byte of a file or folder name that is not
    UTF-8 (Python holds it as a surrogate, e.g. Latin-1's ``caf\\xe9.png``) shows as ``\\xe9``, and
    a control character a terminal would obey (``\\x1b[2J`` clears the screen) as its escape.
    Newlines and tabs stay: this is also what written files hold."""
    if _UNSHOWABLE.search(text) is None:
        return text
    try:  # bytes that are not UTF-8 one at a time, as Python's backslashreplace writes them
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte makes (from JSON's "\ud800")
        pass
    return _UNSHOWABLE.sub(lambda found: _escaped(found.group()), text)


def excerpt(text: str, limit: int | None = EXCERPT) -> str:
    """Text from a file (a CSV header, a label, a class or file name, a value) for a one-line
    message: escaped as ``readable`` does, newlines and tabs too, and cut after ``limit`` characters
    with "..." (None: whole). Only the first ``limit`` characters are looked at, so a value of a
    gigabyte costs what a short one does; an escape is never cut in two."""
    if limit is None:
        return readable(text).replace("\n", "\\n").replace("\t", "\\t")
    pieces: list[str] = []
    used = 0
    for char in text[: limit + 1]:
        shown = _ONE_LINE.get(char) or readable(char)
        used += len(shown)
        if used > limit:
            return "".join(pieces) + "..."
        pieces.append(shown)
    return "".join(pieces)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(readable(text), encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike[str], data: Any) -> Path:
    return write_text(target, json.dumps(data, indent=2, default=json_default) + "\n")


def read_json_object(source: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in ``source``; None when the file is missing, cannot be read, is not UTF-8
    JSON, or holds something other than an object (a list, a number). Each caller decides what
    None means to it: a default, a folder that is not a run, an error of its own."""
    try:
        value = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def write_csv(target: str | os.PathLike[str], header: list[str], rows: list[list[Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(target, buffer.getvalue())


def without_nan(value: Any) -> Any:
    """NaN and infinities (a diverged loss) are not JSON: null instead, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for what the engine hands over: numpy values, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
