"""Where a dataset lies, and the listing that reads it.

A dataset location is a folder of class folders, a CSV file of pixels, a CIFAR ``.bin``
batch or a folder of CIFAR batches; ``list_location`` tells them apart and returns the
listing of the kind that reads it (``folders.FolderListing``, ``sources.SourceListing``).
"""

from __future__ import annotations

import os
from pathlib import Path

from cnn_tui.core.data import folders, sources
from cnn_tui.core.data.listing import Listing


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
    if root.is_file() and sources.is_source_file(root):
        return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
    entries = folders.scan_folder(root, f"{what} folder")
    if not folders.class_folders(entries) and sources.has_batches([e.name for e in entries]):
        return sources.list_source(root, what=what, num_classes=num_classes, class_names=class_names)
    return folders.list_class_folders(root, entries, what=what, num_classes=num_classes, class_names=class_names)
