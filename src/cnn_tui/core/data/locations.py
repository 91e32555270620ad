"""Where a dataset lies, and the listing that reads it.

A dataset location is a folder of class folders, a CSV file of pixels, a CSV of image paths
and labels, a CIFAR ``.bin`` batch or a folder of CIFAR batches; ``list_location`` tells them
apart and returns the listing of the kind that reads it (``folders.FolderListing``,
``labels_csv.CsvLabelsListing``, ``sources.SourceListing``). ``list_data`` is the listing of one
part of what a ``DataParams`` names: its training, validation or test set, from the folders or
the rows of its labels CSV, with the groups its params give.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnn_tui.core.data import folders, labels_csv, sources
from cnn_tui.core.data.listing import Listing
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.params.files import DataParams

# What each set is called in messages, and the part of a split column it takes.
PART_OF = {"training": "training", "validation": "validation", "test": "testing"}


def list_location(
    root: str | os.PathLike[str],
    *,
    what: str = "training",
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Listing:
    """List the images at ``root``; raise ``DatasetError`` if it cannot be used.

    ``what`` ("training", "test") names the set in messages; ``num_classes`` and ``class_names``,
    when given, are what its classes must be.
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv" and labels_csv.looks_like_labels_csv(root):
        return labels_csv.read_labels_csv(root, what=what, num_classes=num_classes, class_names=class_names)
    if root.is_file() and sources.is_source_file(root):
        return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
    entries = folders.scan_folder(root, f"{what} folder")
    if not folders.class_folders(entries) and sources.has_batches([e.name for e in entries]):
        return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
    return folders.list_class_folders(root, entries, what=what, num_classes=num_classes, class_names=class_names)


def csv_columns(data: DataParams) -> labels_csv.CsvColumns:
    return labels_csv.CsvColumns(data.path_column, data.label_column, data.split_column, data.group_column)


def list_data(data: DataParams, what: str, *, class_names: list[str] | None = None) -> Listing | None:
    """The listing of ``what`` ("training", "validation", "test") of ``data``.

    With a labels CSV: its rows of that part when it has a split column; without one, all of
    its rows train and the test set is ``test_dir`` (as for a split column without test rows).
    The validation set is the CSV's validation rows or ``val_dir``; None when there is none
    (training then holds out ``validation_split``).
    """
    num_classes = data.num_classes
    if data.labels_csv:
        listing = _read_csv(data, what, class_names)
        part = PART_OF[what]
        if what == "training" or (listing.parts is not None and (listing.parts == part).any()):
            return with_group_pattern(labels_csv.select(listing, part), data.group_pattern)
        class_names = class_names or listing.class_names
    if what == "validation":
        if not data.val_dir:
            return None
        return with_group_pattern(list_location(data.val_path, what="validation", num_classes=num_classes,
                                                class_names=class_names), data.group_pattern)
    folder = data.test_dir if what == "test" else data.train_dir
    if not folder.strip():
        raise DatasetError(f"no {what} set: the labels CSV has no split column and {what[:5]}_dir is empty; "
                           "add a split column (train/val/test) or give a test folder", path=data.labels_csv_path)
    path = data.test_path if what == "test" else data.train_path
    return with_group_pattern(list_location(path, what=what, num_classes=num_classes, class_names=class_names),
                              data.group_pattern)


def _read_csv(data: DataParams, what: str, class_names: list[str] | None) -> labels_csv.CsvLabelsListing:
    return labels_csv.read_labels_csv(data.labels_csv_path, images_dir=data.images_path, columns=csv_columns(data),
                                      what=what, num_classes=data.num_classes, class_names=class_names)


def group_ids(names: list[str], pattern: str) -> tuple[np.ndarray, list[str]]:
    """The group of each name (the first group of ``pattern`` found in its file name) and the names
    it does not match: each of those is a group of its own."""
    compiled = re.compile(pattern)
    groups, unmatched = [], []
    for name in names:
        found = compiled.search(name.rsplit("/", 1)[-1])
        if found and found.group(1):
            groups.append(found.group(1))
        else:
            groups.append(name)
            unmatched.append(name)
    return np.array(groups, dtype=object), unmatched


def with_group_pattern(listing: Listing, pattern: str) -> Listing:
    """``listing`` with the groups ``pattern`` finds in its file names (none without a pattern)."""
    if not pattern or listing.groups is not None:
        return listing
    return replace(listing, groups=group_ids(listing.names, pattern)[0])
