"""list_location: each kind of dataset location gets its own listing, and that listing decodes its images."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.folders import FolderListing
from cnn_tui.core.data.listing import Listing
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.data.sources import CIFAR_RECORD, CIFAR_SIDE, SourceListing
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.events import LoadProgress

# Two classes, two images each; every image one grey level, so a decoded row says which image it is.
LEVELS = {"a": [10, 20], "b": [30, 40]}


def class_folders(root: Path) -> Path:
    for name, levels in LEVELS.items():
        (root / name).mkdir(parents=True)
        for i, level in enumerate(levels):
            Image.fromarray(np.full((4, 4), level, dtype=np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def pixel_csv(path: Path) -> Path:
    header = ",".join(["label", *(f"pixel{i}" for i in range(16))])
    rows = [",".join([name, *[str(level)] * 16]) for name, levels in LEVELS.items() for level in levels]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def cifar_batch(path: Path) -> Path:
    records = [bytes([label]) + bytes([level]) * (CIFAR_RECORD - 1)
               for label, levels in enumerate(LEVELS.values()) for level in levels]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(records))
    return path


def decoded_levels(listing: Listing, side: int, channels: int) -> list[int]:
    events = []
    decoded = listing.decode((len(listing.files), side, side, channels), temp=None, emit=events.append, stop=None)
    assert decoded.failures == [] and decoded.temp is None
    assert [(e.done, e.total) for e in events if isinstance(e, LoadProgress)][-1] == (4, 4)
    assert all(len(np.unique(row)) == 1 for row in decoded.pixels)  # one grey level an image, as written
    return [int(row.flat[0]) for row in decoded.pixels]


def test_class_folders_are_a_folder_listing_that_decodes_its_files(tmp_path):
    listing = list_location(class_folders(tmp_path / "set"))
    assert type(listing) is FolderListing
    assert (listing.unit, listing.images_are_files, listing.native_channels, listing.native_side) == (
        "file", True, None, None)
    assert listing.class_names == ["a", "b"] and listing.names == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert decoded_levels(listing, 4, 1) == [10, 20, 30, 40]


def test_a_csv_of_pixels_is_a_source_listing_that_decodes_its_rows(tmp_path):
    csv = pixel_csv(tmp_path / "set.csv")
    listing = list_location(csv)
    assert type(listing) is SourceListing and listing.kind == "csv"
    assert (listing.unit, listing.images_are_files, listing.native_channels, listing.native_side) == (
        "row", False, 1, 4)
    assert listing.class_names == ["a", "b"] and listing.names == ["set.csv:2", "set.csv:3", "set.csv:4", "set.csv:5"]
    assert decoded_levels(listing, 4, 1) == [10, 20, 30, 40]


@pytest.mark.parametrize("named", ["file", "folder"])
def test_cifar_batches_are_a_source_listing_that_decodes_its_records(tmp_path, named):
    batch = cifar_batch(tmp_path / "cifar" / "data_batch_1.bin")
    listing = list_location(batch if named == "file" else batch.parent)
    assert type(listing) is SourceListing and listing.kind == "cifar"
    assert (listing.unit, listing.images_are_files, listing.native_channels, listing.native_side) == (
        "record", False, 3, CIFAR_SIDE)
    assert listing.class_names == ["0", "1"] and listing.labels.tolist() == [0, 0, 1, 1]
    assert decoded_levels(listing, CIFAR_SIDE, 3) == [10, 20, 30, 40]


def test_load_images_decodes_through_the_listings_own_decode(tmp_path, monkeypatch):
    calls = []
    for kind in (FolderListing, SourceListing):
        def spy(self, *args, _real=kind.decode, **kwargs):
            calls.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(kind, "decode", spy)
    load_images(class_folders(tmp_path / "set"), image_size=4, cache=False)
    load_images(pixel_csv(tmp_path / "set.csv"), image_size=4, cache=False)
    load_images(cifar_batch(tmp_path / "cifar" / "data_batch_1.bin").parent, image_size=8, cache=False)
    assert calls == ["FolderListing", "SourceListing", "SourceListing"]


def test_a_folder_with_neither_class_folders_nor_batches_is_refused(tmp_path):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="training folder has no class sub-folders; put each class's images"):
        list_location(tmp_path / "loose")
    with pytest.raises(DatasetError, match=r"test folder is a file, not a folder \(nor a \.csv"):
        list_location(tmp_path / "loose" / "notes.txt", what="test")
