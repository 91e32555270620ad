"""Datasets that are not a folder per class: a CSV file of pixels, CIFAR-10 binary batches.

They take the same road as folders (``dataset.load_images``): a listing (class names,
one label per image, rows skipped with their place), then pixels decoded into the same
uint8 array the cache keeps, resized and converted to the configured channel count by the
same Pillow calls a folder's images go through. Only listing and decoding differ: a
``SourceListing`` is a ``Listing`` whose images are rows of files, and it fills the array itself.

- **CSV** (Kaggle's ``mnist_train.csv``): one image a line, a ``label`` column and square
  grayscale pixels 0-255 (``label,pixel0,...`` or ``label,1x1,...``; a file without a
  header has its label first). Class names are the distinct labels, sorted as text like
  folder names. An image is named ``file.csv:LINE``.
- **CIFAR-10 binary batches**: records of 1 label byte + 3,072 bytes (32x32 red, then
  green, then blue planes). A folder gives its ``data_batch_*.bin`` to a training set and
  ``test_batch.bin`` to a test set; a ``.bin`` file is used as it is. Class names come from
  ``batches.meta.txt`` beside the batches (one a line, in label order), else the labels.
  An image is named ``batch.bin:RECORD`` (counted from 1).

A row or record that cannot be used is skipped and listed with its place; a file that
cannot be read as a whole (no label column, pixels that make no square, a batch cut short)
is a ``DatasetError`` naming the file and the place.

Nothing is read whole before it is trusted: a CSV is read a line at a time, each line only up to a
limit (4 MB before the header, then what a row of its width can hold), so a file that is one
enormous line (a sparse file of NUL bytes) is refused after a few megabytes; decoding reads each
listed row again where the listing found it. The first row of each label is checked in full while
listing, so a row of ``x,x,...,x`` is skipped and listed, not made a class "x" of no images.
A batch's length is judged from its size before its labels are read.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from PIL import Image

from cnn_tui.core.data import decode
from cnn_tui.core.data.listing import DecodedPixels, Listing, SkippedFile, Unit, check_classes, name_list
from cnn_tui.core.errors import DatasetError, TaskStopped
from cnn_tui.core.events import Emit, LoadProgress
from cnn_tui.core.fileio import excerpt

# Bump when what a row or record decodes to changes (it keys the cache, as DECODER_VERSION does).
# 2: a label's first row is checked when listed (a row that is not numbers is no longer listed).
SOURCE_VERSION = 2
CIFAR_SIDE = 32
CIFAR_RECORD = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE
CIFAR_META = "batches.meta.txt"
CIFAR_META_MAX = 64 * 1024
CIFAR_TRAIN_GLOB = "data_batch_*.bin"
CIFAR_TEST = "test_batch.bin"
CHUNK = 1000  # rows or records decoded between progress events and stop checks


@dataclass(frozen=True, kw_only=True)
class SourceListing(Listing):
    """A listing whose images are rows of files rather than files: it decodes them itself."""

    kind: Literal["csv", "cifar"]
    sources: list[Path]  # the files read
    places: np.ndarray  # line or record (from 1) of each image in its file
    origin: np.ndarray  # index into sources of each image
    side: int  # every image is side x side
    label_column: int = 0  # a CSV's
    spans: np.ndarray | None = None  # a CSV's: (byte offset, length) of each image's line, read again to decode

    @property
    def native_channels(self) -> int:
        return 3 if self.kind == "cifar" else 1  # a CSV holds grayscale pixels

    @property
    def native_side(self) -> int:
        return self.side

    @property
    def unit(self) -> Unit:
        return "record" if self.kind == "cifar" else "row"

    def decode(
        self,
        shape: tuple[int, ...],
        *,
        temp: Path | None,
        emit: Emit,
        stop: threading.Event | None,
        workers: int | None = None,
    ) -> DecodedPixels:
        """Decode in this process, a chunk of rows or records at a time (``workers`` is not used)."""
        pixels = np.lib.format.open_memmap(temp, mode="r+") if temp else np.empty(shape, dtype=np.uint8)
        size, channels = shape[1], shape[3]
        fill = _decode_csv if self.kind == "csv" else _decode_cifar
        failures = fill(self, pixels, size, channels, emit, stop)
        if temp is not None:
            pixels.flush()
        # Every CIFAR record is colour (as an RGB file counts); a CSV row never is.
        colour = (len(self.files) - len(failures)) if self.native_channels == 3 else 0
        return DecodedPixels(pixels, failures, colour, temp)

    def digest(self) -> bytes:
        """The source files' paths, sizes and modification times (and how they are read)."""
        body = hashlib.sha256(f"{self.kind}\0{SOURCE_VERSION}".encode())
        for path in self.sources:
            stat = path.stat()
            body.update(f"\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        return body.digest()


# ---------------------------------------------------------------- what a path names


def is_source_file(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".bin")


def has_batches(names: list[str]) -> bool:
    """Whether a folder's entries include CIFAR binary batches."""
    return any(n == CIFAR_TEST or (n.startswith("data_batch_") and n.endswith(".bin")) for n in names)


def list_source(
    path: Path, *, what: str, num_classes: int | None = None, class_names: list[str] | None = None
) -> SourceListing:
    """List a CSV file, a ``.bin`` batch or a folder of batches (``locations.list_location`` sends them here)."""
    if path.is_dir():
        listing = _list_cifar(_batches_in(path, what), path, what)
    elif path.suffix.lower() == ".bin":
        listing = _list_cifar([path], path, what)
    else:
        listing = _list_csv(path, what)
    names = listing.class_names
    check_classes(names, what=what, counted=f"{what} set has {len(names)} classes",
                  num_classes=num_classes, class_names=class_names, path=listing.root)
    return listing


def _unreadable(exc: OSError, path: Path, what: str) -> DatasetError:
    if isinstance(exc, FileNotFoundError):
        return DatasetError(f"{what} file not found", path=path)
    if isinstance(exc, PermissionError):
        return DatasetError(f"{what} file cannot be read (permission denied)", path=path)
    return DatasetError(f"{what} file cannot be read ({exc.strerror or exc})", path=path)


# ---------------------------------------------------------------- CSV of pixels

# A line is read only this far before it is trusted: the header of a 512x512 image is ~2.6 MB, and a
# file that is one enormous line (a sparse file of NUL bytes) is refused after 4 MB, not read whole.
MAX_LINE = 4 * 2**20
# Once the header says how wide a row is, a row may hold this many bytes a value (' "254.9999" ',
# far more than "255,") and a little more; a longer line is no row of pixels.
BYTES_PER_VALUE = 32
ROW_SLACK = 256
MAX_LABEL = 255  # characters: what a class folder's name may hold, so a CSV's classes can be folders too
NOT_A_CSV_LINE = " without a line break; a CSV of pixels holds one image a line"


class _CsvLines:
    """A CSV file's lines one at a time (without their line end), each read no further than
    ``limit`` bytes: a longer one is a ``DatasetError`` naming it, never a gigabyte in memory."""

    def __init__(self, handle: BinaryIO, path: Path, what: str) -> None:
        self.handle, self.path, self.what = handle, path, what
        self.limit, self.too_long = MAX_LINE, NOT_A_CSV_LINE
        self.number = 0  # of the line last read, from 1
        self.start = 0  # its byte offset
        self._next = 0

    def read(self) -> bytes | None:
        try:
            raw = self.handle.readline(self.limit + 2)  # room for "\r\n"
        except OSError as exc:
            raise _unreadable(exc, self.path, self.what) from None
        if not raw:
            return None
        self.number += 1
        self.start, self._next = self._next, self._next + len(raw)
        line = raw[:-1] if raw.endswith(b"\n") else raw
        line = line[:-1] if line.endswith(b"\r") else line
        if len(line) > self.limit:
            raise DatasetError(f"line {self.number}: longer than {self.limit:,} bytes{self.too_long}", path=self.path)
        return line


def _fields(line: bytes) -> list[str]:
    return [f.strip().strip('"').strip() for f in line.decode("utf-8", "surrogateescape").split(",")]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label(line: bytes, column: int) -> str:
    if column == 0:  # the usual place: no need to split the row
        return line[: line.find(b",")].strip().strip(b'"').strip().decode("utf-8", "surrogateescape")
    return _fields(line)[column]


def _list_csv(path: Path, what: str) -> SourceListing:
    try:
        with open(path, "rb") as handle:
            return _list_csv_lines(_CsvLines(handle, path, what), path, what)
    except OSError as exc:  # opening it (reading is _CsvLines's to say)
        raise _unreadable(exc, path, what) from None


def _list_csv_lines(lines: _CsvLines, path: Path, what: str) -> SourceListing:
    first = lines.read()
    while first is not None and not first.strip():
        first = lines.read()
    if first is None:
        raise DatasetError(f"{what} CSV file is empty", path=path)
    first_number, first_start = lines.number, lines.start
    if first_number == 1 and first.startswith(b"\xef\xbb\xbf"):
        first, first_start = first[3:], first_start + 3  # a byte-order mark (Excel's "CSV UTF-8")
    head = _fields(first)
    width = len(head)
    header = not all(_is_number(f) for f in head)
    if header:
        lowered = [f.lower() for f in head]
        if "label" not in lowered:
            shown = name_list(head, limit=4)
            raise DatasetError(f"line {first_number}: the header has no 'label' column (it starts {shown})", path=path)
        label_column = lowered.index("label")
    else:
        label_column = 0  # no header (pjreddie's mnist_train.csv): the label comes first
    pixels = width - 1
    side = math.isqrt(pixels)
    if pixels < 1 or side * side != pixels:
        near = f" (a square of {side}x{side} has {side * side})" if side else ""
        raise DatasetError(
            f"line {first_number}: {pixels} pixel columns do not make a square grayscale image{near}", path=path
        )
    lines.limit = min(MAX_LINE, BYTES_PER_VALUE * width + ROW_SLACK)
    lines.too_long = f", more than a row of {width} values holds"

    commas = width - 1
    labels: list[str] = []
    places: list[int] = []
    spans: list[tuple[int, int]] = []
    skipped: list[SkippedFile] = []
    proven: set[str] = set()  # labels with a row whose pixels are numbers 0-255
    for number, start, line in _rows(lines, None if header else (first_number, first_start, first)):
        if not line.strip():
            continue  # blank lines (a trailing one, or between blocks) hold no image
        found = line.count(b",")
        label = _label(line, label_column) if found == commas else ""
        if found != commas:
            problem: str | None = f"{found + 1} values, expected {width}"
        elif not label:
            problem = "no label"
        elif len(label) > MAX_LABEL:
            problem = f"a label of {len(label):,} characters (a class name holds at most {MAX_LABEL}, as a folder name)"
        elif label not in proven:
            # The first usable row of each label is read in full here: a row of "x,x,...,x" (or of empty
            # values, or of 300s) must not make a class "x" whose every image is then skipped. The
            # other rows of a label are only decoded, and skipped there when they cannot be used.
            problem = _row_problem(line, label_column, side)
            if problem is None:
                proven.add(label)
        else:
            problem = None
        if problem:
            skipped.append(SkippedFile(f"{path}:{number}", problem))
            continue
        labels.append(label)
        places.append(number)
        spans.append((start, len(line)))
    if not labels:
        after = first_number if header else first_number - 1
        raise DatasetError(f"{what} CSV file has no image rows after line {after}", path=path)
    names = sorted(set(labels))  # as text, like folder names, so a CSV and its folder export agree
    index = {name: k for k, name in enumerate(names)}
    codes = np.fromiter((index[label] for label in labels), dtype=np.int32, count=len(labels))
    # Grouped by class (stable), as a folder listing is: the load then shuffles with the seed.
    order = np.argsort(codes, kind="stable")
    return _listing(
        "csv", path, [path], names, codes[order], np.asarray(places, dtype=np.int64)[order],
        np.zeros(len(labels), dtype=np.int32), skipped, label_column=label_column, side=side,
        spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2)[order],
    )


def _rows(lines: _CsvLines, first: tuple[int, int, bytes] | None) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, line) of each line after the header (``first``: a file without one)."""
    if first is not None:
        yield first
    while (line := lines.read()) is not None:
        yield lines.number, lines.start, line


def _row_problem(line: bytes, label_column: int, side: int) -> str | None:
    """Why a row's pixels cannot be used (None: they can), in the words decoding uses."""
    values, problems = _parse_rows([_without_label(line, label_column)])
    return problems[0] or _pixel_problem(values[0], side)


def _parse_rows(texts: list[str]) -> tuple[np.ndarray, list[str | None]]:
    try:
        values = np.loadtxt(texts, delimiter=",", dtype=np.float32, ndmin=2, quotechar='"')
    except ValueError:  # some row is not numbers: find which, one at a time
        return _rows_one_by_one(texts)
    return values, [None] * len(texts)


def _decode_csv(listing: SourceListing, target: np.ndarray, size: int, channels: int, emit: Emit,
                stop: threading.Event | None) -> list[tuple[int, str]]:
    path = listing.sources[0]
    spans = listing.spans if listing.spans is not None else np.zeros((0, 2), dtype=np.int64)
    filler = ",".join(["0"] * (listing.side * listing.side))
    failures: list[tuple[int, str]] = []
    total = len(listing.files)
    started = time.perf_counter()
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise _unreadable(exc, path, "data") from None
    try:
        for start in range(0, total, CHUNK):
            _check_stop(stop, start, total)
            rows = range(start, min(start + CHUNK, total))
            texts = [_row_text(descriptor, spans[i], listing) for i in rows]
            values, problems = _parse_rows([filler if text is None else text for text in texts])
            for offset, index in enumerate(rows):
                problem = ("the row changed after the file was listed" if texts[offset] is None else
                           problems[offset] or _pixel_problem(values[offset], listing.side))
                if problem:
                    failures.append((index, problem))
                    continue
                gray = np.rint(values[offset]).astype(np.uint8).reshape(listing.side, listing.side)
                target[index] = _finish(gray, "L", size, channels)
            _progress(emit, listing, rows.stop, total, started)
    except OSError as exc:
        raise _unreadable(exc, path, "data") from None
    finally:
        os.close(descriptor)
    return failures


def _row_text(descriptor: int, span: np.ndarray, listing: SourceListing) -> str | None:
    """The pixels of one listed row, read where the listing found it (None: the file changed since)."""
    start, length = int(span[0]), int(span[1])
    line = os.pread(descriptor, length, start)
    if len(line) != length or line.count(b",") != listing.side * listing.side:
        return None
    return _without_label(line, listing.label_column)


def _without_label(line: bytes, column: int) -> str:
    text = line.decode("utf-8", "replace")
    if column == 0:
        return text[text.find(",") + 1 :]
    parts = text.split(",")
    del parts[column]
    return ",".join(parts)


def _rows_one_by_one(texts: list[str]) -> tuple[np.ndarray, list[str | None]]:
    values = np.zeros((len(texts), texts[0].count(",") + 1 if texts else 0), dtype=np.float32)
    problems: list[str | None] = []
    for i, text in enumerate(texts):
        problem = None
        for column, field_text in enumerate(text.split(",")):
            try:
                values[i, column] = float(field_text.strip().strip('"') or "nan")
            except ValueError:
                problem = f"pixel {column + 1} is not a number ('{excerpt(field_text.strip(), 20)}')"
                break
        problems.append(problem)
    return values, problems


def _pixel_problem(values: np.ndarray, side: int) -> str | None:
    if not np.isfinite(values).all():
        return f"pixel {int(np.flatnonzero(~np.isfinite(values))[0]) + 1} is empty or not a number"
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        bad = int(np.flatnonzero((values < 0) | (values > 255))[0])
        return f"pixel {bad + 1} is {values[bad]:g}, outside 0-255"
    return None


# ---------------------------------------------------------------- CIFAR-10 binary batches


def _batches_in(folder: Path, what: str) -> list[Path]:
    if what == "training":
        found = sorted(folder.glob(CIFAR_TRAIN_GLOB))
        if not found:
            raise DatasetError(f"{what} folder holds CIFAR batches but no {CIFAR_TRAIN_GLOB} "
                               f"({CIFAR_TEST} is the test set)", path=folder)
        return found
    test = folder / CIFAR_TEST
    if not test.is_file():
        raise DatasetError(f"{what} folder holds CIFAR batches but no {CIFAR_TEST} "
                           f"({CIFAR_TRAIN_GLOB} are the training set)", path=folder)
    return [test]


def _meta_names(folder: Path) -> list[str] | None:
    meta = folder / CIFAR_META
    try:
        with open(meta, "rb") as handle:
            data = handle.read(CIFAR_META_MAX + 1)  # 256 class names: a file this long is none
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatasetError(f"cannot be read ({exc.strerror or exc})", path=meta) from None
    if len(data) > CIFAR_META_MAX:
        raise DatasetError(f"is longer than {CIFAR_META_MAX:,} bytes: no list of class names, one a line", path=meta)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot be read ({exc})", path=meta) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError("names no classes (one class name a line, in label order)", path=meta)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"names a class twice ({name_list(repeated)})", path=meta)
    if len(names) > 256:
        raise DatasetError(f"names {len(names)} classes; a label byte holds at most 256", path=meta)
    return names


def _list_cifar(batches: list[Path], root: Path, what: str) -> SourceListing:
    folder = batches[0].parent
    meta = _meta_names(folder)
    labels: list[np.ndarray] = []
    for batch in batches:
        if not batch.is_file():
            raise DatasetError(f"{what} batch not found", path=batch)
        size = batch.stat().st_size  # judged before anything is read: the labels are read where they lie
        whole, rest = divmod(size, CIFAR_RECORD)
        if rest or not whole:
            raise DatasetError(
                f"{size} bytes are not whole {CIFAR_RECORD}-byte records (1 label byte + 3,072 pixel bytes): "
                f"record {whole + 1} at byte {whole * CIFAR_RECORD} is cut short after {rest} bytes",
                path=batch,
            )
        try:
            records = np.memmap(batch, dtype=np.uint8, mode="r", shape=(whole, CIFAR_RECORD))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{what} batch cannot be read ({getattr(exc, 'strerror', None) or exc})",
                               path=batch) from None
        labels.append(np.array(records[:, 0]))
        del records
    raw = np.concatenate(labels)
    origin = np.concatenate([np.full(len(b), i, dtype=np.int32) for i, b in enumerate(labels)])
    places = np.concatenate([np.arange(1, len(b) + 1, dtype=np.int64) for b in labels])
    skipped: list[SkippedFile] = []
    if meta is None:
        values = np.unique(raw)
        names = [str(v) for v in values]
        codes = np.searchsorted(values, raw).astype(np.int32)
        keep = np.ones(len(raw), dtype=bool)
    else:
        names = meta
        keep = raw < len(meta)
        for i in np.flatnonzero(~keep):
            skipped.append(SkippedFile(f"{batches[origin[i]]}:{places[i]}",
                                       f"label {raw[i]}, but {CIFAR_META} names {len(meta)} classes"))
        codes = raw.astype(np.int32)
    order = np.flatnonzero(keep)
    order = order[np.argsort(codes[order], kind="stable")]
    # A folder's training set is the glob of its batches: the root that names the set (and keys its
    # cache entry) must differ from the same folder's test set.
    named = root / CIFAR_TRAIN_GLOB if root.is_dir() and what == "training" else (
        root / CIFAR_TEST if root.is_dir() else root)
    return _listing(
        "cifar", named, batches, names, codes[order], places[order], origin[order], skipped,
        side=CIFAR_SIDE,
    )


def _decode_cifar(listing: SourceListing, target: np.ndarray, size: int, channels: int, emit: Emit,
                  stop: threading.Event | None) -> list[tuple[int, str]]:
    maps = [np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, CIFAR_RECORD) for path in listing.sources]
    total = len(listing.files)
    started = time.perf_counter()
    for start in range(0, total, CHUNK):
        _check_stop(stop, start, total)
        stop_at = min(start + CHUNK, total)
        for source, records in enumerate(maps):
            mine = np.flatnonzero(listing.origin[start:stop_at] == source) + start
            if not len(mine):
                continue
            planes = records[listing.places[mine] - 1, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
            rgb = planes.transpose(0, 2, 3, 1)
            if size == CIFAR_SIDE and channels == 3:
                target[mine] = rgb  # as stored: nothing to convert
            else:
                for index, image in zip(mine, rgb):
                    target[index] = _finish(np.ascontiguousarray(image), "RGB", size, channels)
        _progress(emit, listing, stop_at, total, started)
    del maps
    return []


# ---------------------------------------------------------------- shared


def _listing(kind: Literal["csv", "cifar"], root: Path, sources: list[Path], names: list[str], labels: np.ndarray,
             places: np.ndarray, origin: np.ndarray, skipped: list[SkippedFile], *, side: int,
             label_column: int = 0, spans: np.ndarray | None = None) -> SourceListing:
    files = [f"{sources[o]}:{p}" for o, p in zip(origin.tolist(), places.tolist())]
    count = len(files)
    return SourceListing(
        root, names, files, labels.astype(np.int32), [f"{sources[o].name}:{p}" for o, p in zip(origin.tolist(), places.tolist())],
        np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64), skipped,
        kind=kind, sources=sources, places=places, origin=origin, side=side, label_column=label_column,
        spans=spans,
    )


def _finish(pixels: np.ndarray, mode: str, size: int, channels: int) -> np.ndarray:
    """The same conversion and resizing a decoded image file goes through."""
    if mode == "L" and channels == 1 and pixels.shape[0] == size:
        return pixels[..., None]
    return decode._finish(Image.fromarray(pixels, mode=mode), "L" if channels == 1 else "RGB", size, channels)


def _check_stop(stop: threading.Event | None, done: int, total: int) -> None:
    if stop is not None and stop.is_set():

        raise TaskStopped(f"loading stopped after {done} of {total} images")


def _progress(emit: Emit, listing: SourceListing, done: int, total: int, started: float) -> None:
    elapsed = max(time.perf_counter() - started, 1e-9)
    emit(LoadProgress(str(listing.root), done, total, done / elapsed))


__all__ = ["SourceListing", "has_batches", "is_source_file", "list_source"]
