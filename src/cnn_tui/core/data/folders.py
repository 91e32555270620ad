"""Class folders (one sub-folder per class): listing their files and decoding them.

A repeated load of an unchanged folder is served from the cache, so listing is most of
what it costs: the loop below does one ``stat`` per file and as little Python as it can.
Anything unusual (folders, links, odd types, empty files) takes the slow path that words
the reason it is skipped.

Big folders decode in worker processes (and in this one, which takes chunks from the same
queue) straight into a memory-mapped file that then serves as the cache entry for the next
load.
"""

from __future__ import annotations

import errno
import hashlib
import math
import operator
import os
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np

from cnn_tui.core.data import decode, pool
from cnn_tui.core.data.listing import DecodedPixels, Listing, SkippedFile, Unit, check_classes
from cnn_tui.core.errors import DatasetError, TaskStopped
from cnn_tui.core.events import Emit, LoadProgress, Notice

# Below this many files (or bytes of files: a big photo decodes in about a millisecond),
# worker processes cost more than they save. Until they have started this process does all
# of the decoding, so a first load pays only for the CPU time their start takes.
PARALLEL_THRESHOLD = 2000
PARALLEL_BYTES = 4 * 2**20
# Chunks queued per worker process: enough that none idles while this process decodes one.
IN_FLIGHT_PER_WORKER = 2

_BY_NAME = operator.attrgetter("name")
_SIZE = operator.attrgetter("st_size")
_MTIME = operator.attrgetter("st_mtime_ns")
_MODE = operator.attrgetter("st_mode")
# Stat each file relative to its open folder where the platform can (POSIX), by path elsewhere.
_STAT_AT = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd and hasattr(os, "O_DIRECTORY")


@dataclass(frozen=True)
class FolderListing(Listing):
    """What a class folder holds: one image file per entry of ``files``."""

    @property
    def native_channels(self) -> int | None:
        return None  # files differ: "auto" colour mode probes them

    @property
    def native_side(self) -> int | None:
        return None

    @property
    def unit(self) -> Unit:
        return "file"

    def digest(self) -> bytes:
        """A hash of every file's relative path, size and modification time."""
        body = hashlib.sha256("\0".join(self.names).encode("utf-8", "surrogateescape"))
        body.update(self.sizes.tobytes())
        body.update(self.mtimes.tobytes())
        return body.digest()

    def decode(
        self,
        shape: tuple[int, ...],
        *,
        temp: Path | None,
        emit: Emit,
        stop: threading.Event | None,
        workers: int | None = None,
    ) -> DecodedPixels:
        """Decode the files in chunks: in this process for a small folder, in worker processes for a big one."""
        total = shape[0]
        size, channels = shape[1], shape[3]
        workers = workers or pool.worker_count()
        parallel = workers > 1 and (total >= PARALLEL_THRESHOLD or int(self.sizes.sum()) >= PARALLEL_BYTES)
        # Small enough that no process is left finishing a long last chunk while the others idle.
        chunk = max(16, min(256, math.ceil(total / (workers * 16)))) if parallel else 256
        chunks = [list(range(i, min(i + chunk, total))) for i in range(0, total, chunk)]
        failures: list[tuple[int, str]] = []
        colour = 0
        started = time.perf_counter()
        done = 0

        def progress() -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            emit(LoadProgress(str(self.root), done, total, done / elapsed))

        def paths(indices: list[int]) -> list[str]:
            return [self.files[i] for i in indices]

        if not parallel:
            pixels = np.lib.format.open_memmap(temp, mode="r+") if temp else np.empty(shape, dtype=np.uint8)
            for indices in chunks:
                if stop is not None and stop.is_set():
                    raise TaskStopped(f"loading stopped after {done} of {total} images")
                bad, col = decode.decode_into_array(pixels, indices, paths(indices), size, channels)
                failures += bad
                colour += col
                done += len(indices)
                progress()
            return DecodedPixels(pixels, failures, colour, temp)

        keep = temp is not None  # a cache entry (flushed to disk once at the end), not a scratch file
        if temp is None:  # no cache: workers still need a file to write into
            fd, name = tempfile.mkstemp(prefix="cnn-tui-", suffix=".npy")
            os.close(fd)
            temp = Path(name)
            np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=shape).flush()
        pixels = np.load(temp, mmap_mode="r+")
        queue = deque(chunks)
        pending: dict[Future, list[int]] = {}
        reported = 0
        workers_up = False

        finished_load = False
        try:
            executor = pool.process_pool(workers)
            while queue or pending:
                if stop is not None and stop.is_set():
                    raise TaskStopped(f"loading stopped after {done} of {total} images")
                while queue and len(pending) < IN_FLIGHT_PER_WORKER * workers:
                    ix = queue.popleft()
                    pending[executor.submit(decode.decode_into, str(temp), ix, paths(ix), size, channels)] = ix
                finished: Any = ()
                if queue and not workers_up:
                    # Until the workers deliver (a cold pool takes a second or so to start) this
                    # process decodes too, from the far end of the queue. Once they run it only
                    # feeds them: decoding here would hold the GIL that loky's feeder thread needs.
                    ix = queue.pop()
                    bad, col = decode.decode_into_array(pixels, ix, paths(ix), size, channels)
                    failures += bad
                    colour += col
                    done += len(ix)
                    finished = [future for future in pending if future.done()]
                else:
                    finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in finished:
                    bad, col = future.result()
                    failures += bad
                    colour += col
                    done += len(pending.pop(future))
                    workers_up = True
                if done > reported:
                    reported = done
                    progress()
            finished_load = True
        except BrokenProcessPool:
            # A worker died (out of memory, killed): finish the remaining chunks in this process.
            emit(Notice("an image-decoding worker process died; decoding the rest in this process", "warning"))
            for indices in [*pending.values(), *queue]:
                if stop is not None and stop.is_set():
                    raise TaskStopped(f"loading stopped after {done} of {total} images") from None
                bad, col = decode.decode_into_array(pixels, indices, paths(indices), size, channels)
                failures += bad
                colour += col
                done += len(indices)
            finished_load = True
        finally:
            for future in pending:
                future.cancel()
            if keep:
                pixels.flush()
            del pixels
            if not (finished_load or keep):  # a stopped load leaves no scratch file (the caller removes a cache entry's)
                temp.unlink(missing_ok=True)
        failures.sort()
        return DecodedPixels(np.load(temp, mmap_mode="r"), failures, colour, temp)


# ---------------------------------------------------------------- listing


def scan_folder(folder: Path, what: str) -> list[os.DirEntry[str]]:
    """The entries of ``folder``; ``DatasetError`` (naming it as ``what``) if it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as exc:
        raise _unreadable(folder, what, exc) from None


def _unreadable(folder: Path, what: str, exc: OSError) -> DatasetError:
    if isinstance(exc, FileNotFoundError):
        return DatasetError(f"{what} not found", path=folder)
    if isinstance(exc, NotADirectoryError):
        return DatasetError(f"{what} is a file, not a folder (nor a .csv of pixels or a CIFAR .bin batch)",
                            path=folder)
    if isinstance(exc, PermissionError):
        return DatasetError(f"{what} cannot be read (permission denied)", path=folder)
    return DatasetError(f"{what} cannot be read ({exc.strerror})", path=folder)


def class_folders(entries: list[os.DirEntry[str]]) -> list[os.DirEntry[str]]:
    """The class sub-folders among a folder's entries (hidden ones are not classes), sorted by name."""
    return sorted((e for e in entries if _is_dir(e) and not e.name.startswith(".")), key=_BY_NAME)


def list_class_folders(
    root: Path,
    entries: list[os.DirEntry[str]],
    *,
    what: str,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> FolderListing:
    """List the class folders among ``entries`` (``root``'s) and their files; ``DatasetError`` if they cannot be used."""
    class_dirs = class_folders(entries)
    if not class_dirs:
        loose = sum(1 for e in entries if Path(e.name).suffix.lower() in decode.image_extensions())
        hint = f" ({loose} images lie directly in it)" if loose else ""
        raise DatasetError(
            f"{what} folder has no class sub-folders{hint}; put each class's images in its own folder, "
            f"e.g. {root.name}/cat/, {root.name}/dog/",
            path=root,
        )
    names = [e.name for e in class_dirs]
    check_classes(names, what=what, counted=f"{what} folder has {len(names)} class folders",
                  num_classes=num_classes, class_names=class_names, path=root)

    extensions = decode.image_extensions()
    suffixes = _single_dot_suffixes(extensions)
    files: list[str] = []
    relative: list[str] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    counts: list[int] = []
    skipped: list[SkippedFile] = []
    for class_dir in class_dirs:
        folder = class_dir.path
        good, stats = _images_of(folder, f"class folder '{class_dir.name}'", extensions, suffixes, skipped)
        files += map((folder + os.sep).__add__, good)
        relative += map((class_dir.name + "/").__add__, good)
        sizes += map(_SIZE, stats)
        mtimes += map(_MTIME, stats)
        counts.append(len(good))
        if not good:
            raise DatasetError(f"class folder '{class_dir.name}' has no image files", path=folder)
    labels = np.repeat(np.arange(len(names), dtype=np.int32), counts)
    return FolderListing(
        root, names, files, labels, relative,
        np.asarray(sizes, dtype=np.int64), np.asarray(mtimes, dtype=np.int64), skipped,
    )


def _single_dot_suffixes(extensions: frozenset[str]) -> tuple[str, ...] | None:
    """The extensions as a tuple for ``str.endswith`` when that test is exact (each is a dot and
    letters: a name ends with one exactly when its last suffix is one); None otherwise."""
    return tuple(extensions) if all(e.rfind(".") == 0 for e in extensions) else None


def _images_of(
    folder: str, what: str, extensions: frozenset[str], suffixes: tuple[str, ...] | None, skipped: list[SkippedFile]
) -> tuple[list[str], list[os.stat_result]]:
    """The sorted names of the usable image files in ``folder`` with their stats; the others skipped.

    This is what a cached reload costs, so the common case (every file a non-empty regular
    image) does one ``stat`` per file, relative to the open folder (no path lookup each time),
    and a few C-level passes; anything unusual takes the slow path that words each reason.
    """
    stat = os.stat
    try:
        if _STAT_AT:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # type: ignore[attr-defined]  # POSIX only
            try:
                names = os.listdir(fd)
                names.sort()
                good = _image_names(names, extensions, suffixes)
                try:
                    stats = [stat(n, dir_fd=fd) for n in good]
                except OSError:
                    stats = None
            finally:
                os.close(fd)
        else:
            names = os.listdir(folder)
            names.sort()
            good = _image_names(names, extensions, suffixes)
            prefix = folder + os.sep
            try:
                stats = [stat(prefix + n) for n in good]
            except OSError:
                stats = None
    except OSError as exc:
        raise _unreadable(Path(folder), what, exc) from None
    # stat() follows links, like DirEntry.is_file(): a link to an image counts as that image
    if stats is None or 0 in map(_SIZE, stats) or not all(S_ISREG(m) for m in set(map(_MODE, stats))):
        entries = scan_folder(Path(folder), what)
        entries.sort(key=_BY_NAME)
        slow_good, slow_stats = _slow_path(entries, extensions, skipped)
        return [e.name for e in slow_good], slow_stats
    if len(good) != len(names):
        chosen = set(good)
        others = {n for n in names if n[0] != "." and n not in chosen}  # hidden files are ignored, not skipped
        if others:
            entries = sorted((e for e in scan_folder(Path(folder), what) if e.name in others), key=_BY_NAME)
            _slow_path(entries, extensions, skipped)
    return good, stats


def _image_names(names: list[str], extensions: frozenset[str], suffixes: tuple[str, ...] | None) -> list[str]:
    """The names that are not hidden and end in an image extension (any case)."""
    if suffixes is not None:
        return [n for n in names if n[0] != "." and n.lower().endswith(suffixes)]
    # (n[n.rfind("."):] is the suffix with its dot, or the last letter when there is none)
    return [n for n in names if n[0] != "." and n[n.rfind(".") :].lower() in extensions]


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
