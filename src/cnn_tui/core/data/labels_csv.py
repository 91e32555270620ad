"""A CSV of image paths and their labels (``path,label[,split][,group]``): its listing.

The way clinical and lab sets come: a folder of images and a metadata CSV. Each good row
names an image file (relative to the images folder, by default the CSV's own) and its
class; the class names are the distinct labels, sorted. A row that cannot be used (a
missing file, an empty label, a path outside the images folder, a name that is not UTF-8,
a path given two labels, an unknown split) is skipped and listed as ``labels.csv:LINE``
with the reason, as a class folder lists a file it cannot read. The images then decode
as a class folder's do (``FolderListing.decode``), through the same cache.

An optional split column fixes which rows train, validate and test (``select``); an
optional group column names each row's group (a patient), which no split separates.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cnn_tui.core.data import decode
from cnn_tui.core.data.folders import FolderListing
from cnn_tui.core.data.listing import SkippedFile, Unit, check_classes
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.fileio import excerpt

MAX_CSV_BYTES = 256 * 2**20  # a labels CSV of millions of rows is far below this
MAX_LABEL = 255  # characters, as a class folder's name (split writes labels as folders)
PATH_COLUMNS = ("path", "filename", "image", "file", "file_name", "image_path", "filepath")
LABEL_COLUMNS = ("label", "class")
SPLIT_COLUMNS = ("split",)
GROUP_COLUMNS = ("group", "patient", "patient_id", "subject")
DELIMITERS = ",;\t|"
# The usual spellings of each part, as a split column holds them.
SPLIT_NAMES = {
    "train": "training", "training": "training",
    "val": "validation", "valid": "validation", "validation": "validation", "dev": "validation",
    "test": "testing", "testing": "testing",
}
PARTS = ("training", "validation", "testing")


@dataclass(frozen=True)
class CsvColumns:
    """The columns to read; "" detects the usual names."""

    path: str = ""
    label: str = ""
    split: str = ""
    group: str = ""


@dataclass(frozen=True)
class CsvLabelsListing(FolderListing):
    """The usable rows of a labels CSV: one image file per entry of ``files``.

    ``root`` is the CSV; ``names`` are the paths relative to the images folder.
    ``parts`` holds each row's part ("training", "validation", "testing") when the CSV has
    a split column; ``part`` names the one this listing was selected to ("" for all rows)."""

    parts: np.ndarray | None = None
    part: str = ""
    images_root: Path | None = None

    @property
    def classes_are_folders(self) -> bool:
        return False

    @property
    def unit(self) -> Unit:
        return "file"

    @property
    def cache_root(self) -> Path:
        # each part is its own cache entry: the training rows must not evict the test rows'
        return Path(f"{self.root}:{self.part}") if self.part else self.root

    def part_counts(self) -> dict[str, int]:
        if self.parts is None:
            return {}
        return {p: int(np.count_nonzero(self.parts == p)) for p in PARTS}


def looks_like_labels_csv(path: Path) -> bool:
    """Whether a .csv file's header names a path column and a label column (not a CSV of pixels)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return False
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        header = [h.strip().lower() for h in next(csv.reader([first], _dialect(first)), [])]
    except csv.Error:  # a header no CSV reader takes (a stray carriage return) names no columns
        return False
    return any(c in header for c in PATH_COLUMNS) and any(c in header for c in LABEL_COLUMNS)


def read_labels_csv(
    csv_path: Path,
    *,
    images_dir: Path | None = None,
    columns: CsvColumns = CsvColumns(),
    what: str = "training",
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> CsvLabelsListing:
    """Every usable row of ``csv_path``; ``DatasetError`` (one line, naming the file) if the CSV cannot be used."""
    csv_path = Path(csv_path).resolve()
    root = Path(os.path.normpath(images_dir.resolve() if images_dir else csv_path.parent))
    text = _read_text(csv_path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DatasetError("labels CSV is empty; its first line must name the columns, e.g. path,label", path=csv_path)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(lines[0]))
    header = [h.strip() for h in next(reader)]
    path_at = _column(header, columns.path, PATH_COLUMNS, "path_column", csv_path)
    label_at = _column(header, columns.label, LABEL_COLUMNS, "label_column", csv_path)
    split_at = _column(header, columns.split, SPLIT_COLUMNS, "split_column", csv_path, optional=True)
    group_at = _column(header, columns.group, GROUP_COLUMNS, "group_column", csv_path, optional=True)
    if not root.is_dir():
        raise DatasetError("images folder not found (the folder the CSV's paths are relative to)", path=root)

    extensions = decode.image_extensions()
    where = csv_path.name
    skipped: list[SkippedFile] = []
    rows: dict[str, tuple[int, str, str, str | None, str | None, os.stat_result]] = {}  # name -> (line, file, ...)
    labels_of: dict[str, dict[str, int]] = {}  # name -> {label: first line}
    width = max(i for i in (path_at, label_at, split_at, group_at) if i is not None) + 1
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # a blank line
        problem, name, file, label, part, group, stat = _row(fields, width, path_at, label_at, split_at, group_at,
                                                              root, extensions)
        if name is not None and label:
            seen = labels_of.setdefault(name, {})
            seen.setdefault(label, line)
            if len(seen) > 1:
                continue  # reported below, with every line that names it
            if name in rows and problem is None:
                problem = f"{excerpt(name)} is listed again (first on line {rows[name][0]}); this row is not used"
        if problem:
            skipped.append(SkippedFile(f"{where}:{line}", problem))
            continue
        rows[name] = (line, file, label, part, group, stat)  # type: ignore[assignment,index]
    for name, seen in labels_of.items():
        if len(seen) > 1:
            given = ", ".join(f"{excerpt(label)} on line {line}" for label, line in seen.items())
            first = min(seen.values())
            skipped.append(SkippedFile(f"{where}:{first}", f"{excerpt(name)} has two labels ({given}); none is used"))
            rows.pop(name, None)
    skipped.sort(key=lambda s: int(s.path.rsplit(":", 1)[1]))
    if not rows:
        example = f"; e.g. {skipped[0].path}: {skipped[0].reason}" if skipped else ""
        raise DatasetError(f"labels CSV has no usable rows ({len(skipped)} skipped{example})", path=csv_path)

    kept = sorted(rows.items(), key=lambda item: item[1][0])  # the CSV's order
    names = sorted({row[2] for _, row in kept})
    check_classes(names, what=what, counted=f"labels CSV has {len(names)} labels", num_classes=num_classes,
                  class_names=class_names, path=csv_path)
    index = {name: k for k, name in enumerate(names)}
    labels = np.array([index[row[2]] for _, row in kept], dtype=np.int32)
    parts = np.array([row[3] for _, row in kept], dtype=object) if split_at is not None else None
    groups = (np.array([row[4] or name for name, row in kept], dtype=object) if group_at is not None else None)
    return CsvLabelsListing(
        csv_path, names, [row[1] for _, row in kept], labels, [name for name, _ in kept],
        np.array([row[5].st_size for _, row in kept], dtype=np.int64),
        np.array([row[5].st_mtime_ns for _, row in kept], dtype=np.int64),
        skipped, groups=groups, parts=parts, images_root=root,
    )


def select(listing: CsvLabelsListing, part: str) -> CsvLabelsListing:
    """The rows of one part ("training", "validation", "testing"); the class names stay the whole CSV's."""
    if listing.parts is None:
        return replace(listing, part=part)
    keep = np.flatnonzero(listing.parts == part)
    return replace(
        listing, files=[listing.files[i] for i in keep], labels=listing.labels[keep],
        names=[listing.names[i] for i in keep], sizes=listing.sizes[keep], mtimes=listing.mtimes[keep],
        groups=listing.groups[keep] if listing.groups is not None else None, parts=listing.parts[keep], part=part,
        # the rows skipped belong to no part; the training set reports them
        skipped=listing.skipped if part == "training" else [],
    )


# ---------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise DatasetError(f"labels CSV is {size / 2**20:,.0f} MiB, more than a list of paths needs "
                               f"(at most {MAX_CSV_BYTES // 2**20} MiB)", path=path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError("labels CSV not found", path=path) from None
    except IsADirectoryError:
        raise DatasetError("labels_csv is a folder, not a CSV file", path=path) from None
    except OSError as exc:
        raise DatasetError(f"labels CSV cannot be read ({exc.strerror or exc})", path=path) from None
    if b"\0" in data[:4096]:
        raise DatasetError("labels CSV is not a text file", path=path)
    # Excel's UTF-8 byte order mark is not part of the first column's name; bytes that are not
    # UTF-8 stay (as surrogates) so the one row holding them is reported, not the whole file.
    return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")


def _dialect(header: str) -> type[csv.Dialect]:
    """The delimiter the header uses: comma, or the semicolon of a European Excel, a tab, a bar."""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel


def _column(header: list[str], given: str, usual: tuple[str, ...], field: str, path: Path, *,
            optional: bool = False) -> int | None:
    lowered = [h.lower() for h in header]
    if given:
        if given in header:
            return header.index(given)
        if given.lower() in lowered:
            return lowered.index(given.lower())
        raise DatasetError(f"labels CSV has no column '{excerpt(given)}' ({field}); its columns are "
                           f"{', '.join(excerpt(h) for h in header)}", path=path)
    for name in usual:
        if name in lowered:
            return lowered.index(name)
    if optional:
        return None
    raise DatasetError(f"labels CSV has no {' or '.join(usual[:4])} column; name it in {field} (its columns are "
                       f"{', '.join(excerpt(h) for h in header)})", path=path)


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _row(fields: list[str], width: int, path_at: int, label_at: int, split_at: int | None, group_at: int | None,
         root: Path, extensions: frozenset[str]):
    """(problem, name, file, label, part, group, stat) of one row; the problem is None for a good row."""
    nothing = (None, None, None, None, None, None)
    if len(fields) < width:
        return (f"has {len(fields)} field(s), the header {width}", *nothing)
    raw, label = fields[path_at].strip(), fields[label_at].strip()
    if any(_not_utf8(f) for f in (raw, label)):
        shown = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return (f"{excerpt(shown)}: not UTF-8 text (save the CSV as UTF-8)", *nothing)
    if not raw:
        return ("empty path", *nothing)
    joined = Path(os.path.normpath(root / raw))  # an absolute path stays itself
    if not joined.is_relative_to(root):
        return (f"{excerpt(raw)} lies outside the images folder {excerpt(str(root))}", *nothing)
    name = joined.relative_to(root).as_posix()
    if not label:
        return (f"{excerpt(raw)} has an empty label", name, None, None, None, None, None)
    if len(label) > MAX_LABEL:
        return (f"a label of {len(label):,} characters (at most {MAX_LABEL}, as a class folder's name)", *nothing)
    part = None
    if split_at is not None:
        given = fields[split_at].strip()
        part = SPLIT_NAMES.get(given.lower())
        if part is None:
            return (f"split '{excerpt(given)}' is none of train, val, test", name, None, label, None, None, None)
    group = fields[group_at].strip() if group_at is not None else None
    if group is not None and _not_utf8(group):
        return (f"{excerpt(raw)}: its group is not UTF-8 text", *nothing)
    problem, stat = _file_problem(joined, raw, extensions)
    if problem:
        return (problem, name, None, label, part, group, None)
    return (None, name, str(joined), label, part, group, stat)


def _file_problem(path: Path, raw: str, extensions: frozenset[str]) -> tuple[str | None, os.stat_result | None]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return f"{excerpt(raw)}: file not found", None
    except OSError as exc:
        return f"{excerpt(raw)}: cannot be read ({exc.strerror or exc})", None
    if not path.is_file():
        return f"{excerpt(raw)}: not a file", None
    if path.suffix.lower() not in extensions:
        return f"{excerpt(raw)}: not an image file type ({path.suffix or 'no extension'})", None
    if stat.st_size == 0:
        return f"{excerpt(raw)}: empty file (0 bytes)", None
    return None, stat
