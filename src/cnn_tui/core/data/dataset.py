"""Image folders (one sub-folder per class), a CSV of pixels or CIFAR batches into arrays ready for Keras.

Classes are the sorted names of the sub-folders. Any file Pillow opens is used,
converted to the configured size and channel count; everything else in a class
folder (corrupt files, text files, folders, broken links) is skipped and listed,
never fatal. ``locations.list_location`` lists the images and each listing decodes its
own (``folders``, ``sources``) into the array that then serves as the cache entry for the
next load; this module puts the pieces together: cache, shuffle, scale, notes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn_tui.core.data import decode, feeding
from cnn_tui.core.data.cache import ImageCache, make_key
from cnn_tui.core.data.listing import Listing, SkippedFile
from cnn_tui.core.data.locations import list_data, list_location
from cnn_tui.core.errors import DatasetError
from cnn_tui.core.events import Emit, LoadProgress, Notice, ignore
from cnn_tui.core.params.files import DataParams

# Files whose header is read to decide grayscale or colour when color_mode is "auto".
COLOUR_PROBES = 64
SCALE_CHUNK = 512  # images converted to float32 at a time (bounds the temporary uint8 copy)
SCALE_CHUNK_BYTES = 256 * 1024  # ... and fewer when they are big, so the copy stays in the CPU cache


@dataclass
class ImageSet:
    """Decoded images: ``x`` float32 in [0, 1] shaped (n, size, size, channels), ``y`` class indices."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    files: list[str]
    root: Path
    skipped: list[SkippedFile] = field(default_factory=list)
    from_cache: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None  # each image's group (a patient), or None: no groups

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_size(self) -> int:
        return int(self.x.shape[1])

    @property
    def channels(self) -> int:
        return int(self.x.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> list[int]:
        return np.bincount(self.y, minlength=self.num_classes).tolist()

    def take(self, indices: np.ndarray) -> ImageSet:
        return ImageSet(
            # ndarray.take copies; a streamed PixelView.take stays a lazy view of the file
            self.x.take(indices, axis=0), self.y[indices], self.class_names, [self.files[i] for i in indices], self.root,
            groups=self.groups[indices] if self.groups is not None else None,
        )

    def split(self, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
        """A stratified (train, validation) split; ``fraction`` goes to validation. With groups,
        no group is on both sides (``group_split``), so the validation share is about ``fraction``."""
        if self.groups is not None:
            train, held = group_split(self.y, self.groups, fraction, seed, what="validation")
        else:
            train, held = _stratified_indices(self.y, self.num_classes, test_size=fraction, seed=seed,
                                              what="validation")
        return self.take(train), self.take(held)

    def subset(self, max_samples: int, seed: int) -> ImageSet:
        """At most ``max_samples`` images, every class kept in proportion."""
        if len(self) <= max_samples:
            return self
        keep, _ = _stratified_indices(self.y, self.num_classes, test_size=len(self) - max_samples, seed=seed, what="subset")
        return self.take(np.sort(keep))

    def examples(self, per_class: int = 3) -> dict[str, list[int]]:
        """Indices of the first few images of each class (for a samples preview)."""
        return {name: np.flatnonzero(self.y == k)[:per_class].tolist() for k, name in enumerate(self.class_names)}


def group_split(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int, *,
                what: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) indices, about ``fraction`` held, stratified by class as far as whole groups allow:
    one fold of scikit-learn's ``StratifiedGroupKFold`` with about 1 / ``fraction`` folds."""
    from sklearn.model_selection import StratifiedGroupKFold  # noqa: PLC0415 — scikit-learn is slow to import

    if fraction > 0.5:  # one fold of 1 / fraction folds holds out at most half: hold out the rest of one
        held, kept = group_split(y, groups, 1 - fraction, seed, what=what)
        return kept, held
    distinct = len(set(groups.tolist()))
    folds = min(max(2, round(1 / fraction)), distinct)
    if distinct < 2:
        raise DatasetError(f"a {what} split by groups needs at least 2 groups; all {len(y)} images are one group")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        kept, held = next(splitter.split(np.zeros(len(y)), y, groups.astype(str)))
    except ValueError as exc:
        raise DatasetError(f"cannot make a {what} split of {len(y)} images by {distinct} groups: {exc}") from None
    return kept, held


def _stratified_indices(
    y: np.ndarray, num_classes: int, *, test_size: float | int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 — scikit-learn is slow to import

    counts = np.bincount(y, minlength=num_classes)
    if counts.min() < 2:
        raise DatasetError(
            f"a stratified {what} split needs at least 2 images in every class; the smallest class has {counts.min()}"
        )
    try:
        return train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DatasetError(f"cannot make a stratified {what} split of {len(y)} images: {exc}") from None


# ---------------------------------------------------------------- decoding


def resolve_channels(listing: Listing, color_mode: str) -> int:
    """1 or 3 channels: from ``color_mode``, or for "auto" from the data or a sample of file headers."""
    if color_mode == "grayscale":
        return 1
    if color_mode == "rgb":
        return 3
    if listing.native_channels:  # a CSV of pixels or CIFAR batches
        return listing.native_channels
    step = max(1, len(listing.files) // COLOUR_PROBES)
    return 3 if any(decode.probe_colour(p) for p in listing.files[::step]) else 1


def load_images(
    root: str | os.PathLike[str],
    *,
    image_size: int,
    color_mode: str = "auto",
    channels: int | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
    seed: int = 42,
    what: str = "training",
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    cache: ImageCache | None | bool = True,
    workers: int | None = None,
) -> ImageSet:
    """Load a class-folder dataset as float32 arrays, shuffled with ``seed``.

    ``channels`` (1 or 3) overrides ``color_mode`` (a loaded model dictates it).
    Raises ``DatasetError`` for unusable folders and ``TaskStopped`` if ``stop`` is set.
    """
    listing = list_location(root, what=what, num_classes=num_classes, class_names=class_names)
    return load_listing(listing, image_size=image_size, color_mode=color_mode, channels=channels, seed=seed,
                        emit=emit, stop=stop, cache=cache, workers=workers)


def load_data(
    data: DataParams,
    what: str,
    *,
    class_names: list[str] | None = None,
    channels: int | None = None,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    cache: ImageCache | None | bool = True,
    workers: int | None = None,
) -> ImageSet | None:
    """The training, validation or test set of ``data`` (``locations.list_data``); None for a
    validation set the params do not name."""
    listing = list_data(data, what, class_names=class_names)
    if listing is None:
        return None
    return load_listing(listing, image_size=data.image_size, color_mode=data.color_mode, channels=channels,
                        seed=data.seed, emit=emit, stop=stop, cache=cache, workers=workers)


def load_listing(
    listing: Listing,
    *,
    image_size: int,
    color_mode: str = "auto",
    channels: int | None = None,
    seed: int = 42,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    cache: ImageCache | None | bool = True,
    workers: int | None = None,
) -> ImageSet:
    """Decode a listing's images (or take them from the cache) into an ``ImageSet`` shuffled with ``seed``."""
    started = time.perf_counter()
    store = ImageCache.default() if cache is True else (cache or None)
    digest = listing.digest()
    auto = channels is None and color_mode not in ("grayscale", "rgb")
    if auto and store:  # an "auto" load of these very files decided before: no header probes
        channels = next((c for c in (1, 3) if store.meta(make_key(listing.cache_root, image_size, c, digest=digest)[1]).get("auto")), None)
    channels = channels or resolve_channels(listing, color_mode)
    head, key = make_key(listing.cache_root, image_size, channels, digest=digest)
    shape = (len(listing.files), image_size, image_size, channels)

    hit = store.lookup(key) if store else None
    if hit:
        pixels, meta = hit
        failures = [(int(i), str(r)) for i, r in meta["failures"]]
        colour = int(meta["colour"])
        emit(LoadProgress(str(listing.root), len(listing.files), len(listing.files), 0.0))
    else:
        temp = store.new_array(key, shape) if store else None
        try:
            decoded = listing.decode(shape, temp=temp, emit=emit, stop=stop, workers=workers)
        except BaseException:
            if temp is not None:
                temp.unlink(missing_ok=True)
            raise
        pixels, failures, colour, temp = decoded.pixels, decoded.failures, decoded.colour, decoded.temp
        if store and temp is not None:
            store.commit(key, head, temp, {"rows": shape[0], "root": str(listing.root), "failures": failures,
                                           "colour": colour, "auto": auto})
            pixels = np.load(store.folder / f"{key}.npy", mmap_mode="r")
        elif temp is not None:
            pixels = np.array(pixels)  # off the temp file before it goes
            temp.unlink(missing_ok=True)

    stream = _too_big_for_memory(len(listing.files) - len(failures), shape)
    images = _assemble(listing, pixels, failures, seed, stream=stream)
    if stream:
        gib = images.x.nbytes / 2**30
        images.notes.append(f"the images would take {gib:.1f} GiB as float32, more than half the free memory: "
                            "they stay 8-bit on disk and are scaled a batch at a time (streaming)")
    images.from_cache = hit is not None
    images.seconds = time.perf_counter() - started
    _add_notes(images, listing, failures, colour, channels, emit)
    return images


def _too_big_for_memory(count: int, shape: tuple[int, ...]) -> bool:
    limit = feeding.stream_limit_bytes()
    return limit is not None and count * int(np.prod(shape[1:])) * 4 > limit


def _assemble(
    listing: Listing, pixels: np.ndarray, failures: list[tuple[int, str]], seed: int, *, stream: bool = False
) -> ImageSet:
    valid = np.ones(len(listing.files), dtype=bool)
    for index, _ in failures:
        valid[index] = False
    labels = listing.labels
    empty = [listing.class_names[k] for k in range(len(listing.class_names)) if not valid[labels == k].any()]
    if empty:
        label = listing.class_names.index(empty[0])
        bad = [(listing.files[i], reason) for i, reason in failures if labels[i] == label]
        example = f"; e.g. {Path(bad[0][0]).name}: {bad[0][1]}" if bad else ""
        if not listing.classes_are_folders:  # rows of a CSV file, records of CIFAR batches, a labels CSV
            raise DatasetError(f"class '{empty[0]}' has no usable {listing.unit}s ({len(bad)} skipped{example})",
                               path=listing.root)
        raise DatasetError(
            f"class folder '{empty[0]}' has no readable images ({len(bad)} skipped{example})",
            path=listing.root / empty[0],
        )
    order = np.flatnonzero(valid)
    order = order[np.random.default_rng(seed).permutation(len(order))]
    x = feeding.PixelView(pixels, order) if stream else _scaled(pixels, order)
    skipped = list(listing.skipped) + [SkippedFile(listing.files[i], reason) for i, reason in failures]
    files = listing.files
    return ImageSet(
        x=x,
        y=labels[order].astype(np.int32),
        class_names=listing.class_names,
        files=np.array(files, dtype=object)[order].tolist(),  # one C-level gather, not a Python loop
        root=listing.root,
        skipped=skipped,
        groups=listing.groups[order] if listing.groups is not None else None,
    )


def _scaled(pixels: np.ndarray, order: np.ndarray) -> np.ndarray:
    # Scale into a preallocated float32 array a cache-sized chunk at a time: no full-size
    # uint8 copy on the way, and one small gather buffer reused for every chunk.
    pixels = pixels.view(np.ndarray)  # a memmap's own indexing costs more than the copy
    x = np.empty((len(order), *pixels.shape[1:]), dtype=np.float32)
    step = max(1, min(SCALE_CHUNK, SCALE_CHUNK_BYTES // max(1, pixels[0].nbytes if len(pixels) else 1)))
    buffer = np.empty((step, *pixels.shape[1:]), dtype=np.uint8)
    scale = np.float32(1 / 255)
    for start in range(0, len(order), step):
        rows = order[start : start + step]
        # mode='clip': take() buffers ``out`` under the default 'raise'; the rows are valid indices
        gathered = np.take(pixels, rows, axis=0, out=buffer[: len(rows)], mode="clip")
        np.multiply(gathered, scale, out=x[start : start + len(rows)])
    return x


def _add_notes(
    images: ImageSet, listing: Listing, failures: list, colour: int, channels: int, emit: Emit
) -> None:
    if images.skipped:
        images.notes.append(f"skipped {len(images.skipped)} file(s) that are not readable images"
                            if listing.images_are_files else
                            f"skipped {len(images.skipped)} {listing.unit}(s) that cannot be used")
    used = len(listing.files) - len(failures)
    if channels == 1 and colour:
        images.notes.append(
            f"{colour} of {used} images hold colour and were converted to grayscale (set color_mode to rgb to keep it)"
        )
    for note in images.notes:
        emit(Notice(note, "warning"))
