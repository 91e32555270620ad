"""Listing class folders: which files to decode, which to skip and why, and the facts
(relative path, size, modification time) that key the decoded-array cache.

A repeated load of an unchanged folder is served from the cache, so listing is most of
what it costs: the loop below does one ``stat`` per file and as little Python as it can.
Anything unusual (folders, links, odd types, empty files) takes the slow path that words
the reason it is skipped.
"""

from __future__ import annotations

import errno
import hashlib
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn_tui.core.data import decode
from cnn_tui.core.errors import DatasetError

_BY_NAME = operator.attrgetter("name")


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class FolderListing:
    """What a class folder holds, before any decoding."""

    root: Path
    class_names: list[str]
    files: list[str]
    labels: np.ndarray
    names: list[str]  # relative paths ("class/file.png"), in the order of ``files``
    sizes: np.ndarray  # int64 bytes
    mtimes: np.ndarray  # int64 st_mtime_ns
    skipped: list[SkippedFile] = field(default_factory=list)

    def counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()

    @property
    def stats(self) -> list[tuple[str, int, int]]:
        """(relative path, size, mtime_ns) of every listed file."""
        return list(zip(self.names, self.sizes.tolist(), self.mtimes.tolist()))

    def digest(self) -> bytes:
        """A hash of every file's relative path, size and modification time."""
        body = hashlib.sha256("\0".join(self.names).encode("utf-8", "surrogateescape"))
        body.update(self.sizes.tobytes())
        body.update(self.mtimes.tobytes())
        return body.digest()


def list_folder(
    root: str | os.PathLike[str],
    *,
    what: str = "training",
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> FolderListing:
    """List class folders and their files; raise ``DatasetError`` if the folder cannot be used.

    A CSV file of pixels, a CIFAR ``.bin`` batch or a folder of them is listed by ``sources``.
    """
    root = Path(root)
    if root.is_file():
        from cnn_tui.core.data import sources

        if sources.is_source_file(root):
            return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
    entries = _scan(root, f"{what} folder")
    class_dirs = sorted((e for e in entries if _is_dir(e) and not e.name.startswith(".")), key=_BY_NAME)
    if not class_dirs:
        from cnn_tui.core.data import sources

        if sources.has_batches([e.name for e in entries]):
            return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
        loose = sum(1 for e in entries if Path(e.name).suffix.lower() in decode.image_extensions())
        hint = f" ({loose} images lie directly in it)" if loose else ""
        raise DatasetError(
            f"{what} folder has no class sub-folders{hint}; put each class's images in its own folder, "
            f"e.g. {root.name}/cat/, {root.name}/dog/",
            path=root,
        )
    names = [e.name for e in class_dirs]
    if num_classes is not None and len(names) != num_classes:
        known = f" ({_difference(class_names, names)})" if class_names is not None else ""
        raise DatasetError(
            f"{what} folder has {len(names)} class folders ({_name_list(names)}) but num_classes is {num_classes}{known}",
            path=root,
        )
    if class_names is not None and names != list(class_names):
        raise DatasetError(f"{what} classes differ from the model's classes: {_difference(class_names, names)}", path=root)

    extensions = decode.image_extensions()
    files: list[str] = []
    relative: list[str] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    counts: list[int] = []
    skipped: list[SkippedFile] = []
    for class_dir in class_dirs:
        before = len(files)
        prefix = class_dir.name + "/"
        found = _scan(Path(class_dir.path), f"class folder '{class_dir.name}'")
        found.sort(key=_BY_NAME)
        # (n[n.rfind("."):] is the suffix with its dot, or the last letter when there is none)
        good = [e for e in found if (n := e.name)[0] != "." and n[n.rfind(".") :].lower() in extensions]
        try:
            # For a regular file is_file() needs no system call; stat() is the one per file.
            stats = [e.stat() for e in good if e.is_file()]
        except OSError:
            stats = []
        if len(stats) != len(good) or not all(s.st_size for s in stats):
            good, stats = _slow_path(found, extensions, skipped)
        elif len(good) != len(found):
            chosen = set(map(id, good))
            _slow_path([e for e in found if id(e) not in chosen], extensions, skipped)
        files += [e.path for e in good]
        relative += [prefix + e.name for e in good]
        sizes += [s.st_size for s in stats]
        mtimes += [s.st_mtime_ns for s in stats]
        counts.append(len(files) - before)
        if counts[-1] == 0:
            raise DatasetError(f"class folder '{class_dir.name}' has no image files", path=class_dir.path)
    labels = np.repeat(np.arange(len(names), dtype=np.int32), counts)
    return FolderListing(
        root, names, files, labels, relative,
        np.asarray(sizes, dtype=np.int64), np.asarray(mtimes, dtype=np.int64), skipped,
    )


def _slow_path(
    entries: list[os.DirEntry[str]], extensions: frozenset[str], skipped: list[SkippedFile]
) -> tuple[list[os.DirEntry[str]], list[os.stat_result]]:
    """Each entry looked at on its own: the usable ones with their stats; the others skipped with a reason."""
    good, stats = [], []
    for entry in entries:
        if entry.name[0] == ".":
            continue  # .DS_Store, ._x.png (macOS resource forks), our own temp files
        problem, stat = _file_problem(entry, extensions)
        if problem:
            skipped.append(SkippedFile(entry.path, problem))
        else:
            good.append(entry)
            stats.append(stat)
    return good, stats


def _scan(folder: Path, what: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except FileNotFoundError:
        raise DatasetError(f"{what} not found", path=folder) from None
    except NotADirectoryError:
        raise DatasetError(f"{what} is a file, not a folder (nor a .csv of pixels or a CIFAR .bin batch)",
                           path=folder) from None
    except PermissionError:
        raise DatasetError(f"{what} cannot be read (permission denied)", path=folder) from None
    except OSError as exc:
        raise DatasetError(f"{what} cannot be read ({exc.strerror})", path=folder) from None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _file_problem(entry: os.DirEntry[str], extensions: frozenset[str]) -> tuple[str | None, os.stat_result | None]:
    try:
        if entry.is_dir():
            return "a folder (sub-folders of a class are not read)", None
        stat = entry.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop", None
        if isinstance(exc, FileNotFoundError) and entry.is_symlink():
            return "broken symbolic link (its target is missing)", None
        return f"cannot be read ({exc.strerror or exc})", None
    if not entry.is_file():
        return "not a regular file", None
    suffix = Path(entry.name).suffix.lower()
    if suffix not in extensions:
        return f"not an image file type ({suffix or 'no extension'})", None
    if stat.st_size == 0:
        return "empty file (0 bytes)", None
    return None, stat


def _name_list(names: list[str], limit: int = 6) -> str:
    return ", ".join(names) if len(names) <= limit else ", ".join(names[:limit]) + f", ... {len(names) - limit} more"


def _difference(expected: list[str], found: list[str]) -> str:
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    parts = []
    if missing:
        parts.append(f"missing {_name_list(missing)}")
    if extra:
        parts.append(f"unexpected {_name_list(extra)}")
    if not parts:
        parts.append(f"same names in another order ({_name_list(found)})")
    return "; ".join(parts)
