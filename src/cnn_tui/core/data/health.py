"""Data health: what is wrong with a training and a test set before a model learns from it.

For each set: images per class and the imbalance ratio (largest class over smallest),
exact duplicates (by a hash of the file's bytes, so a renamed copy is found; for a CSV or
CIFAR batches, of the pixels), images far from the usual size or in the unusual colour
mode, and unreadable files (the loader's own reasons). Across the sets: test images
that are also training images (leakage: the test accuracy would count images the model
has seen), and, with groups (a labels CSV's group column, ``group_pattern``), a group (a
patient) with images on both sides, which is leakage too. A fixed validation set (``val_dir``,
a split column's validation rows) is checked as a third set. Each finding is one line;
``HealthReport.ok`` when there is none. A class or file name in a finding's message is
escaped (``fileio.excerpt``): whatever bytes a folder, a file or a CSV label holds,
the line shows them and never sends them to the terminal.

Nothing here changes a file. Listing mistakes (no such folder, a wrong class count) raise
``DatasetError`` as they do when loading.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnn_tui.core.data import decode
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.data.listing import Listing
from cnn_tui.core.data.locations import group_ids, list_data, list_location
from cnn_tui.core.errors import TaskStopped
from cnn_tui.core.events import Emit, LoadProgress, ignore
from cnn_tui.core.fileio import excerpt

IMBALANCE_RATIO = 3.0  # largest class / smallest class above which training should weight classes
SIZE_FACTOR = 2.0  # an image whose width or height is this many times off the median is unusual
COLOUR_MINORITY = 0.1  # images in a colour mode held by fewer than this share of the set are unusual
PROGRESS_EVERY = 256


@dataclass(frozen=True)
class Finding:
    """One thing wrong, said in one line."""

    kind: str  # "imbalance", "duplicate", "leak", "group_leak", "ungrouped", "size", "colour", "unreadable"
    part: str  # "training", "test", or "training+test"
    message: str
    files: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "set": self.part, "message": self.message, "files": list(self.files)}


@dataclass
class SetHealth:
    """The facts of one set (what ``check`` prints as its table)."""

    what: str
    root: Path
    class_names: list[str]
    counts: list[int]
    usual_size: tuple[int, int] | None  # (width, height), the median
    colour: int  # images holding colour
    readable: int
    unreadable: int

    @property
    def images(self) -> int:
        return sum(self.counts)

    @property
    def imbalance(self) -> float:
        """Largest class over smallest (1.0 is balanced)."""
        low = min(self.counts) if self.counts else 0
        return float(max(self.counts)) / low if low else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.what, "root": str(self.root), "images": self.images,
            "counts": dict(zip(self.class_names, self.counts)), "imbalance": round(self.imbalance, 3),
            "usual_size": list(self.usual_size) if self.usual_size else None, "colour": self.colour,
            "unreadable": self.unreadable,
        }


@dataclass
class HealthReport:
    sets: list[SetHealth] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sets": [s.as_dict() for s in self.sets],
                "findings": [f.as_dict() for f in self.findings]}


@dataclass
class _Facts:
    """What was read of one set's images, index by index."""

    names: list[str]  # shown in findings: relative to the set's root
    labels: np.ndarray
    hashes: list[bytes | None]  # None: unreadable
    sizes: list[tuple[int, int] | None]
    colour: list[bool]
    problems: list[tuple[str, str]]  # (name, reason) of unreadable files


def check_data(data: Any, *, emit: Emit = ignore, stop: threading.Event | None = None) -> HealthReport:
    """Check the training and test sets a ``DataParams`` names (and its fixed validation set)."""
    train_listing = list_data(data, "training")
    assert train_listing is not None
    names = train_listing.class_names
    sets = {"training": train_listing, "validation": list_data(data, "validation", class_names=names),
            "test": list_data(data, "test", class_names=names)}
    read = {what: _read_listing(listing, what, emit, stop) for what, listing in sets.items() if listing is not None}
    report = HealthReport()
    for what, (listing, facts) in read.items():
        health, findings = _judge(listing, facts, what)
        report.sets.append(health)
        report.findings += findings
        if listing.groups is not None and data.group_pattern and listing.classes_are_folders:
            report.findings += _ungrouped(listing, data.group_pattern, what)
    for first, second in (("training", "test"), ("training", "validation"), ("validation", "test")):
        if first in read and second in read:
            report.findings += _leaks(read[first][1], read[second][1], first, second)
            report.findings += _group_leaks(read[first][0], read[second][0], first, second)
    return report


def check_folder(root: str | Path, *, what: str = "training", emit: Emit = ignore,
                 stop: threading.Event | None = None) -> HealthReport:
    """Check one set on its own (no leakage to look for)."""
    listing, facts = _read_set(Path(root), what, None, None, emit, stop)
    health, findings = _judge(listing, facts, what)
    return HealthReport([health], findings)


# ---------------------------------------------------------------- reading


def _read_set(root: Path, what: str, num_classes: int | None, class_names: list[str] | None, emit: Emit,
              stop: threading.Event | None) -> tuple[Listing, _Facts]:
    listing = list_location(root, what=what, num_classes=num_classes, class_names=class_names)
    return _read_listing(listing, what, emit, stop)


def _read_listing(listing: Listing, what: str, emit: Emit, stop: threading.Event | None) -> tuple[Listing, _Facts]:
    if not listing.images_are_files:
        return listing, _source_facts(listing, listing.root, what, emit, stop)
    # a class folder's skipped files by their path in it; a labels CSV's rows as "labels.csv:LINE"
    skipped = [(os.path.relpath(s.path, listing.root) if listing.classes_are_folders else s.path, s.reason)
               for s in listing.skipped]
    facts = _Facts(list(listing.names), listing.labels, [], [], [], skipped)
    started = time.perf_counter()
    total = len(listing.files)
    for done, path in enumerate(listing.files):
        if done % PROGRESS_EVERY == 0:
            _stop_check(stop, done, total)
            if done:
                emit(LoadProgress(str(listing.root), done, total, done / max(time.perf_counter() - started, 1e-9)))
        digest, size, colour, problem = inspect_file(path)
        facts.hashes.append(digest)
        facts.sizes.append(size)
        facts.colour.append(colour)
        if problem:
            facts.problems.append((listing.names[done], problem))
    emit(LoadProgress(str(listing.root), total, total, total / max(time.perf_counter() - started, 1e-9)))
    return listing, facts


def _members(listing: Listing) -> dict[str, list[str]]:
    """Each group's files (by their shown names)."""
    members: dict[str, list[str]] = defaultdict(list)
    for group, name in zip(listing.groups.tolist() if listing.groups is not None else [], listing.names):
        members[str(group)].append(name)
    return members


def inspect_file(path: str) -> tuple[bytes | None, tuple[int, int] | None, bool, str | None]:
    """(content hash, (width, height), holds colour, why it cannot be used) of one image file."""
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        return None, None, False, f"cannot be read ({exc.strerror or exc})"
    try:
        with Image.open(io.BytesIO(content)) as image:
            size = image.size
            colour = decode.is_colour(image)
            if image.format == "JPEG":
                image.draft(image.mode, (64, 64))  # a full decode of a photo is not needed to find damage
            image.load()
    except Exception:  # noqa: BLE001  (the loader words the reason; ask it)
        return None, None, False, _loader_reason(path)
    return hashlib.blake2b(content, digest_size=16).digest(), size, colour, None


def _loader_reason(path: str) -> str:
    try:
        decode.decode(path, 8, 1)
    except decode.DecodeError as exc:
        return str(exc)
    return "damaged image (Pillow cannot decode all of it)"


def _source_facts(listing: Listing, root: Path, what: str, emit: Emit, stop: threading.Event | None) -> _Facts:
    """A CSV of pixels or CIFAR batches: the loader decodes them at their own size; the pixels are hashed."""
    side = listing.native_side or 28
    images = load_images(root, image_size=side, color_mode="auto", what=what, class_names=listing.class_names,
                         emit=emit, stop=stop)
    pixels = np.rint(np.asarray(images.x) * 255).astype(np.uint8)
    hashes: list[bytes | None] = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in pixels]
    problems = [(Path(s.path).name, s.reason) for s in images.skipped]  # "train.csv:12", "data_batch_1.bin:7"
    colour = images.channels == 3
    return _Facts([Path(f).name for f in images.files], images.y, hashes, [(side, side)] * len(images), [colour] * len(images), problems)


def _stop_check(stop: threading.Event | None, done: int, total: int) -> None:
    if stop is not None and stop.is_set():

        raise TaskStopped(f"check stopped after {done} of {total} images")


# ---------------------------------------------------------------- judging


def _shown(name: str) -> str:
    """A file's name in a finding: whole (the user needs all of it to find the file), but escaped
    and on one line whatever bytes the name holds. ``Finding.files`` keeps the name as it is."""
    return excerpt(name, limit=None)


def _judge(listing: Listing, facts: _Facts, what: str) -> tuple[SetHealth, list[Finding]]:
    names = listing.class_names
    counts = np.bincount(facts.labels, minlength=len(names)).tolist()
    readable = [i for i, h in enumerate(facts.hashes) if h is not None]
    sizes = np.array([facts.sizes[i] for i in readable], dtype=np.int64).reshape(-1, 2)
    usual = (int(np.median(sizes[:, 0])), int(np.median(sizes[:, 1]))) if len(sizes) else None
    colour = sum(facts.colour[i] for i in readable)
    health = SetHealth(what, listing.root, names, counts, usual, colour, len(readable), len(facts.problems))
    findings: list[Finding] = []

    if health.imbalance >= IMBALANCE_RATIO:
        big, small = int(np.argmax(counts)), int(np.argmin(counts))
        findings.append(Finding(
            "imbalance", what,
            f"{what}: classes are imbalanced: '{excerpt(names[big])}' has {counts[big]} images, '{excerpt(names[small])}' "
            f"{counts[small]} (ratio {health.imbalance:.1f}); set class_weight: balanced in the hyper params",
        ))
    for name, reason in facts.problems:
        findings.append(Finding("unreadable", what, f"{what}: {_shown(name)}: {reason}", (name,)))
    findings += _duplicates(facts, names, what)
    if usual:
        findings += _odd_sizes(facts, readable, usual, what)
    findings += _odd_colour(facts, readable, what)
    return health, findings


def _groups(facts: _Facts) -> dict[bytes, list[int]]:
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, digest in enumerate(facts.hashes):
        if digest is not None:
            groups[digest].append(i)
    return groups


def _duplicates(facts: _Facts, class_names: list[str], what: str) -> list[Finding]:
    findings = []
    for members in _groups(facts).values():
        if len(members) < 2:
            continue
        files = tuple(facts.names[i] for i in members)
        classes = sorted({class_names[facts.labels[i]] for i in members})
        labels = f", labelled differently ({', '.join(map(excerpt, classes))})" if len(classes) > 1 else ""
        findings.append(Finding("duplicate", what, f"{what}: {len(files)} identical images{labels}: "
                                f"{', '.join(map(_shown, files))}", files))
    return findings


def _leaks(train: _Facts, test: _Facts, first: str = "training", second: str = "test") -> list[Finding]:
    seen = _groups(train)
    findings = []
    for i, digest in enumerate(test.hashes):
        if digest is None or digest not in seen:
            continue
        copies = [train.names[j] for j in seen[digest]]
        findings.append(Finding(
            "leak", f"{first}+{second}",
            f"leak: {second} image {_shown(test.names[i])} is also in the {first} set ({', '.join(map(_shown, copies))})",
            (test.names[i], *copies),
        ))
    return findings


def _group_leaks(one: Listing, other: Listing, first: str, second: str) -> list[Finding]:
    """A group with images in both sets: the second set's figures would count a group (a patient)
    the model has learnt from."""
    if one.groups is None or other.groups is None:
        return []
    ours, theirs = _members(one), _members(other)
    findings = []
    for group in sorted(ours.keys() & theirs.keys()):
        here, there = ours[group], theirs[group]
        findings.append(Finding(
            "group_leak", f"{first}+{second}",
            f"group leak: group {excerpt(group)} is in the {first} set ({', '.join(map(_shown, here))}) and the "
            f"{second} set ({', '.join(map(_shown, there))})",
            (*here, *there),
        ))
    return findings


def _ungrouped(listing: Listing, pattern: str, what: str) -> list[Finding]:
    """The files group_pattern does not match: each is a group of its own, which may not be meant."""
    unmatched = group_ids(listing.names, pattern)[1]
    if not unmatched:
        return []
    shown = ", ".join(map(_shown, unmatched[:10])) + (f", ... {len(unmatched) - 10} more" if len(unmatched) > 10 else "")
    return [Finding("ungrouped", what, f"{what}: {len(unmatched)} file(s) match no group_pattern {excerpt(pattern)}, "
                    f"so each is a group of its own: {shown}", tuple(unmatched))]


def _odd_sizes(facts: _Facts, readable: list[int], usual: tuple[int, int], what: str) -> list[Finding]:
    width, height = usual
    findings = []
    for i in readable:
        w, h = facts.sizes[i]  # type: ignore[misc]
        if max(w / width, width / w, h / height, height / h) >= SIZE_FACTOR:
            findings.append(Finding("size", what, f"{what}: {_shown(facts.names[i])} is {w}x{h}, far from the usual "
                                    f"{width}x{height}", (facts.names[i],)))
    return findings


def _odd_colour(facts: _Facts, readable: list[int], what: str) -> list[Finding]:
    if not readable:
        return []
    colour = [i for i in readable if facts.colour[i]]
    gray = [i for i in readable if not facts.colour[i]]
    few, mode, usual = (colour, "colour", "grayscale") if len(colour) < len(gray) else (gray, "grayscale", "colour")
    if not few or len(few) >= COLOUR_MINORITY * len(readable):
        return []  # all alike, or a mixed set (color_mode converts them all): nothing stands out
    share = 100 * (len(readable) - len(few)) / len(readable)
    return [Finding("colour", what, f"{what}: {_shown(facts.names[i])} is {mode}; {share:.0f}% of the images are {usual}",
                    (facts.names[i],)) for i in few]
