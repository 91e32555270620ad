"""What a listing is: the images of one dataset location before any decoding.

A listing names every image (``files``), its class (``labels``), what was skipped and why,
and the facts that key the decoded-array cache (``digest``). Each kind of location has its
own: class folders (``folders.FolderListing``), a CSV of pixels or CIFAR batches
(``sources.SourceListing``); ``locations.list_location`` picks it. The loader asks a
listing what it needs through the typed attributes below and lets it decode its own images.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cnn_tui.core.errors import DatasetError
from cnn_tui.core.events import Emit
from cnn_tui.core.fileio import excerpt

# The word for one image: a file of a class folder, a row of a CSV, a record of a CIFAR batch.
Unit = Literal["file", "row", "record"]


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class DecodedPixels:
    """What decoding a listing gives the loader."""

    pixels: np.ndarray  # uint8 (images, size, size, channels), a row per listed file
    failures: list[tuple[int, str]]  # (index into ``files``, reason) of the images that could not be used
    colour: int  # images that held colour
    temp: Path | None  # the file ``pixels`` is mapped from (the cache's temp array or a scratch file), None: memory


@dataclass(frozen=True)
class Listing(ABC):
    """The images of one dataset location, grouped by class, before any decoding."""

    root: Path
    class_names: list[str]
    files: list[str]
    labels: np.ndarray
    names: list[str]  # shown and keyed names ("class/file.png", "train.csv:12"), in the order of ``files``
    sizes: np.ndarray  # int64 bytes (0 for a row or a record)
    mtimes: np.ndarray  # int64 st_mtime_ns (0 for a row or a record)
    skipped: list[SkippedFile] = field(default_factory=list)
    # The group (a patient, a lesion) of each image, in the order of ``files``, or None: no groups.
    # Images of one group are never split apart (validation, folds, ``split``).
    groups: np.ndarray | None = None

    @property
    @abstractmethod
    def native_channels(self) -> int | None:
        """The channels the data fixes (what "auto" colour mode gives); None: probe the files."""

    @property
    @abstractmethod
    def native_side(self) -> int | None:
        """The side every image has (a CSV's square, CIFAR's 32); None: each file has its own size."""

    @property
    @abstractmethod
    def unit(self) -> Unit:
        """The word for one image in messages."""

    @property
    def images_are_files(self) -> bool:
        """Whether each image is a file of its own (one can link, copy or open it), not a row of one."""
        return self.unit == "file"

    @property
    def classes_are_folders(self) -> bool:
        """Whether each class is a folder of its own (a message about a class can name it)."""
        return self.unit == "file"

    @property
    def cache_root(self) -> Path:
        """What the cache keys this listing's entry by (one entry per cache root is kept)."""
        return self.root

    def counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()

    @property
    def stats(self) -> list[tuple[str, int, int]]:
        """(name, size, mtime_ns) of every listed image."""
        return list(zip(self.names, self.sizes.tolist(), self.mtimes.tolist()))

    @abstractmethod
    def digest(self) -> bytes:
        """A hash of everything the decoded pixels depend on (it keys the cache)."""

    @abstractmethod
    def decode(
        self,
        shape: tuple[int, ...],
        *,
        temp: Path | None,
        emit: Emit,
        stop: threading.Event | None,
        workers: int | None = None,
    ) -> DecodedPixels:
        """Decode every listed image into a uint8 array of ``shape`` (images, size, size, channels):
        into ``temp`` (the cache's new array) when given, else into memory or a scratch file.
        ``workers`` caps the decoding processes where a listing uses them. Raises ``TaskStopped``
        when ``stop`` is set."""


# ---------------------------------------------------------------- class names in messages


def name_list(names: list[str], limit: int = 6) -> str:
    """Names for a message: the first ``limit``, each a short escaped excerpt (a name comes from a
    file or a folder: it may be a megabyte long or hold terminal escapes), and how many more."""
    shown = ", ".join(excerpt(name) for name in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... {len(names) - limit} more"


def difference(expected: list[str], found: list[str]) -> str:
    """How ``found`` differs from ``expected``: what is missing, what is unexpected, or the order."""
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    parts = []
    if missing:
        parts.append(f"missing {name_list(missing)}")
    if extra:
        parts.append(f"unexpected {name_list(extra)}")
    if not parts:
        parts.append(f"same names in another order ({name_list(found)})")
    return "; ".join(parts)


def check_classes(
    found: list[str],
    *,
    what: str,
    counted: str,
    num_classes: int | None,
    class_names: list[str] | None,
    path: Path,
) -> None:
    """Raise ``DatasetError`` unless ``found`` are ``num_classes`` classes named ``class_names`` (each when given).

    ``counted`` begins the message about a wrong count: "training folder has 3 class folders".
    """
    if num_classes is not None and len(found) != num_classes:
        known = f" ({difference(class_names, found)})" if class_names is not None else ""
        raise DatasetError(f"{counted} ({name_list(found)}) but num_classes is {num_classes}{known}", path=path)
    if class_names is not None and found != list(class_names):
        raise DatasetError(f"{what} classes differ from the model's classes: {difference(class_names, found)}",
                           path=path)
