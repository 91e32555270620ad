"""A cache of decoded image arrays, so reloading an unchanged folder is near-instant.

An entry is a ``.npy`` of uint8 pixels (one row per listed file) plus a ``.json``
describing it. The key covers the folder, every file's relative path, size and
modification time, the image size, the channel count and the decoder version,
so any change to the folder or the settings misses the cache. Older entries for
the same folder and settings are removed when a new one is written; the whole
cache is trimmed to a size limit, least recently used first.

Location: ``$CNN_TUI_CACHE_DIR`` or ``~/.cache/cnn-tui/images``.
``CNN_TUI_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import fileio
from cnn_tui.core.environment import env_flag, env_int
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.places import cache_folder

# Bump when decode.py changes what a file decodes to.
DECODER_VERSION = 1
DEFAULT_LIMIT_MB = 4096
# Only files named like our entries are ever deleted, whatever folder the cache points at.
_ENTRY = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{24}\.(npy|json)$")
_PARTIAL = re.compile(r"^\.[0-9a-f]{16}-[0-9a-f]{24}\.\d+" + re.escape(fileio.TEMP_SUFFIX) + r"\.npy$")
STALE_PARTIAL_SECONDS = 3600  # a temp array this old belongs to a process that died mid-load


def cache_dir() -> Path | None:
    if not env_flag("CNN_TUI_CACHE", True):
        return None
    base = os.environ.get("CNN_TUI_CACHE_DIR")
    if base:
        return Path(base)
    return cache_folder() / "images"


def make_key(
    root: Path, size: int, channels: int, listing: Iterable[tuple[str, int, int]] = (), *, digest: bytes | None = None
) -> tuple[str, str]:
    """(prefix naming folder + settings, full key also covering every file's size and mtime).

    The files are given as (relative path, size, mtime_ns) tuples in ``listing`` or, from a
    listing (``listing.Listing``), as its ``digest()``.
    """
    head = hashlib.sha256(f"{root.resolve()}\0{size}\0{channels}\0{DECODER_VERSION}".encode()).hexdigest()[:16]
    if digest is None:
        body = hashlib.sha256()
        for rel, nbytes, mtime in listing:
            body.update(f"{rel}\0{nbytes}\0{mtime}\n".encode())
        digest = body.digest()
    return head, f"{head}-{hashlib.sha256(digest).hexdigest()[:24]}"


class ImageCache:
    """Look up and store decoded arrays under one cache folder."""

    def __init__(self, folder: Path, limit_mb: int | None = None) -> None:
        self.folder = folder
        self.limit_bytes = 1024 * 1024 * (limit_mb or env_int("CNN_TUI_CACHE_MAX_MB", DEFAULT_LIMIT_MB, low=1))

    @classmethod
    def default(cls) -> ImageCache | None:
        folder = cache_dir()
        return cls(folder) if folder else None

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def lookup(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        array_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            pixels = np.load(array_path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if meta.get("rows") != len(pixels):
            return None
        now = time.time()
        os.utime(array_path, (now, now))  # least-recently-used bookkeeping
        return pixels, meta

    def meta(self, key: str) -> dict[str, Any]:
        """An entry's description without touching its array; {} when there is none."""
        try:
            meta = json.loads(self._paths(key)[1].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def new_array(self, key: str, shape: tuple[int, ...]) -> Path | None:
        """A fresh .npy (hidden temp name) for workers to decode into; None if unwritable."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f".{key}.{os.getpid()}{fileio.TEMP_SUFFIX}.npy"
            np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape).flush()
            return path
        except OSError:
            return None

    def commit(self, key: str, head: str, temp_array: Path, meta: dict[str, Any]) -> None:
        """Move a fully decoded temp array into place with its description."""
        array_path, meta_path = self._paths(key)
        try:
            os.replace(temp_array, array_path)
            fileio.write_json(meta_path, meta)
        except (OSError, ResultsError):
            temp_array.unlink(missing_ok=True)
            return
        self._drop_stale(head, keep=key)
        self._trim(keep=key)

    def _drop_stale(self, head: str, keep: str) -> None:
        for path in self.folder.glob(f"{head}-*"):
            if _ENTRY.match(path.name) and not path.name.startswith(keep):
                path.unlink(missing_ok=True)

    def _trim(self, keep: str) -> None:
        entries = []
        now = time.time()
        for path in self.folder.iterdir():
            try:
                stat = path.stat()
            except OSError:
                continue
            if _PARTIAL.match(path.name) and now - stat.st_mtime > STALE_PARTIAL_SECONDS:
                path.unlink(missing_ok=True)
            elif _ENTRY.match(path.name) and path.suffix == ".npy":
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.limit_bytes:
                break
            if path.stem == keep:
                continue
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            total -= size
