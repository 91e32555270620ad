"""The streaming path: images that would not fit in memory as float32 stay as uint8 on disk
(the decoded-image cache's memory-mapped .npy) and are scaled a batch at a time.

``PixelView`` stands in for the float32 array wherever an ImageSet's ``x`` is used: slicing
or indexing it returns scaled float32 rows, ``take`` makes a lazy sub-view. ``Batches`` hands
it to Keras as a ``keras.utils.PyDataset``.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.backend import load_keras

SCALE = np.float32(1 / 255)
STREAM_ABOVE_SHARE = 0.5  # stream when the float32 array would take over half the available memory


MEMINFO = Path("/proc/meminfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def available_memory_bytes() -> int | None:
    """The memory this process may still take: the machine's MemAvailable, or less when its
    container's cgroup limit leaves less (Docker's --memory, a Kubernetes pod's limit) — there the
    kernel kills the process long before the machine runs short. None where neither can be read."""
    figures = [n for n in (_meminfo_available(), cgroup_memory_room()) if n is not None]
    return min(figures) if figures else None


def _meminfo_available() -> int | None:
    """MemAvailable from /proc/meminfo (Linux)."""
    try:
        with open(MEMINFO, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max": no limit
        return None
    return int(text)


def _cgroup_folders() -> list[tuple[Path, str, str]]:
    """(folder, limit file, usage file) for this process's memory cgroup and its ancestors, v2 and v1."""
    try:
        lines = PROC_CGROUP.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    found: list[tuple[Path, str, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        if controllers == "":  # cgroup v2, the unified hierarchy
            base, limit, usage = CGROUP_ROOT, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            base, limit, usage = CGROUP_ROOT / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        folder = base / relative.strip("/")
        while True:  # a limit on a parent cgroup binds this process too
            found.append((folder, limit, usage))
            if folder == base:
                break
            folder = folder.parent  # up to the root: in a container that is the container's own cgroup
    return found


def _inactive_file(folder: Path) -> int:
    """Page cache the kernel reclaims before it kills anything (counted in the usage figure):
    what Kubernetes subtracts to get a container's working set."""
    try:
        for line in (folder / "memory.stat").read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name in ("inactive_file", "total_inactive_file") and value.strip().isdigit():
                return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def cgroup_memory_room() -> int | None:
    """What the tightest cgroup memory limit over this process still allows (limit less usage);
    None when no limit is set or there is no cgroup to read."""
    rooms = []
    for folder, limit_name, usage_name in _cgroup_folders():
        limit = _read_number(folder / limit_name)
        if limit is None or limit >= UNLIMITED:
            continue
        usage = max(0, (_read_number(folder / usage_name) or 0) - _inactive_file(folder))
        rooms.append(max(0, limit - usage))
    return min(rooms) if rooms else None


def stream_limit_bytes() -> int | None:
    """Above this many float32 bytes the loader streams; CNN_TUI_STREAM_ABOVE_MB overrides."""
    from cnn_tui.core.environment import env_int

    configured = env_int("CNN_TUI_STREAM_ABOVE_MB", None)
    if configured is not None:
        return configured * 1024 * 1024
    available = available_memory_bytes()
    return int(available * STREAM_ABOVE_SHARE) if available else None


class PixelView:
    """Rows of a uint8 image array, read as float32 in [0, 1] only when indexed."""

    dtype = np.dtype(np.float32)

    def __init__(self, source: np.ndarray, rows: np.ndarray, owned_file: Path | None = None) -> None:
        # a memmap's own indexing wraps every result in a memmap; the plain view is faster
        self.source = source.view(np.ndarray) if isinstance(source, np.memmap) else source
        self.rows = np.asarray(rows, dtype=np.int64)
        self.owned_file = owned_file
        if owned_file is not None:  # a temp file only this view uses: gone with the last view
            weakref.finalize(self, _unlink, owned_file)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.source.shape[1:])

    @property
    def ndim(self) -> int:
        return self.source.ndim

    @property
    def nbytes(self) -> int:
        """What the view would take as a float32 array."""
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        picked = self.rows[key]
        if np.ndim(picked) == 0:
            return np.multiply(self.source[int(picked)], SCALE, dtype=np.float32)
        # memory-mapped reads go fastest in file order; put the rows back in the asked order after
        order = np.argsort(picked, kind="stable")
        out = np.empty((len(picked), *self.source.shape[1:]), dtype=np.float32)
        out[order] = np.multiply(self.source[picked[order]], SCALE, dtype=np.float32)
        return out

    def take(self, indices: Any, axis: int = 0) -> PixelView:
        """A lazy sub-view (same signature as ``ndarray.take`` so ImageSet code serves both)."""
        if axis != 0:
            raise ValueError("a PixelView is taken along its first axis only")
        view = PixelView(self.source, self.rows[np.asarray(indices)])
        view._keep = self  # the temp file lives as long as any view of it
        return view

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out.astype(dtype) if dtype is not None else out


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def is_streamed(x: Any) -> bool:
    return isinstance(x, PixelView)


def batches(x: PixelView, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` over ``x``: one scaled batch at a time, reshuffled each epoch.

    Two reader threads prepare the next batches while the current one trains (numpy's copy
    and scaling release the GIL)."""
    keras = load_keras()

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=2, use_multiprocessing=False, max_queue_size=8)
            self.order = np.arange(len(x))
            self.rng = np.random.default_rng(seed)
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            return x[rows], y[rows]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.rng.shuffle(self.order)

    return Batches()
