"""Split one folder-per-class set into training and testing folders (and a validation folder).

The split is stratified (scikit-learn's ``train_test_split`` with ``stratify``), so every
class keeps its share in each part, and reproducible with a seed. Files are hard-linked
where the file system allows (no extra space, instant), copied otherwise or on request;
an original is never moved, changed or deleted. Everything is written into a hidden folder
inside the output folder first and moved into place at the end, so a stop or a full disk
leaves no half split behind. The result gets a data-params file naming its folders.

``validation/`` is written only when asked (``val > 0``); the written params then name it as
``val_dir``, and training validates on it instead of holding out ``validation_split``.

The source may also be a labels CSV (``labels_csv``): its split column, when it has one, is
obeyed exactly (the shares are not used). With groups (a CSV's group column, or
``group_pattern`` on folder files) no group is on two sides: whole groups are drawn
(``StratifiedGroupKFold``), and the written files keep their group findable
(``group_pattern`` in the written params).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_tui.core.data.dataset import group_split
from cnn_tui.core.data.labels_csv import CsvLabelsListing
from cnn_tui.core.data.listing import Listing, SkippedFile
from cnn_tui.core.data.locations import list_location, with_group_pattern
from cnn_tui.core.errors import DatasetError, ResultsError, TaskStopped, UserError
from cnn_tui.core.params.files import DataParams

PARTS = ("training", "validation", "testing")
GROUP_PREFIX = r"^(.+?)__"  # a labels CSV's group, written before each file's name
DATA_PARAMS_NAME = "data_params.json"
STAGE = ".cnn-tui-split.partial"
DEFAULT_MAX_SIDE = 224  # image_size of the written params when the images are bigger (a usual CNN input)
SIZE_PROBES = 200  # image headers read to find the usual size


@dataclass(frozen=True)
class SplitResult:
    source: Path
    out: Path
    class_names: list[str]
    counts: dict[str, list[int]]  # part -> images per class
    linked: int
    copied: int
    data_params: Path
    image_size: int
    skipped: list[SkippedFile] = field(default_factory=list)
    groups: int = 0  # distinct groups the split kept together (0: no groups)
    fixed: bool = False  # the labels CSV's split column said each image's part
    straddling: list[str] = field(default_factory=list)  # groups a fixed split put in two parts


    @property
    def parts(self) -> list[str]:
        return [p for p in PARTS if p in self.counts]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": str(self.source), "out": str(self.out), "data_params": str(self.data_params),
            "image_size": self.image_size, "linked": self.linked, "copied": self.copied,
            "classes": self.class_names,
            "counts": {part: dict(zip(self.class_names, self.counts[part])) for part in self.parts},
            "skipped": [{"file": s.path, "reason": s.reason} for s in self.skipped],
            "groups": self.groups, "fixed_split": self.fixed, "groups_in_two_parts": self.straddling,
        }


def check_fractions(test: float, val: float) -> None:
    if not 0 < test < 1:
        raise UserError(f"the test share must be between 0 and 1, got {test:g}")
    if not 0 <= val < 1:
        raise UserError(f"the validation share must be at least 0 and below 1, got {val:g}")
    if test + val >= 1:
        raise UserError(f"the test and validation shares ({test:g} + {val:g}) leave nothing for training")


def split_folder(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    test: float = 0.2,
    val: float = 0.0,
    seed: int = 42,
    copy: bool = False,
    image_size: int | None = None,
    stop: threading.Event | None = None,
    group_pattern: str = "",
    listing: Listing | None = None,
) -> SplitResult:
    """Write ``out/training``, ``out/testing`` (``out/validation``) and ``out/data_params.json``.

    ``listing`` (e.g. a labels CSV read with its params' columns) is used instead of listing ``source``."""
    check_fractions(test, val)
    if group_pattern:
        try:
            if re.compile(group_pattern).groups < 1:
                raise UserError(f"the group pattern {group_pattern!r} needs a group in parentheses, the group id")
        except re.error as exc:
            raise UserError(f"the group pattern {group_pattern!r} is not a regular expression ({exc})") from None
    source, out = Path(source).resolve(), Path(out).resolve()
    listing = with_group_pattern(listing or list_location(source, what="source"), group_pattern)
    if not listing.images_are_files:  # a CSV of pixels or CIFAR batches: no files to link
        raise UserError("split works on a folder with one sub-folder per class or a labels CSV, not on a CSV of "
                        "pixels or CIFAR batches", path=source)
    _check_out(source, out)
    existed = out.exists()
    parts_of = listing.parts if isinstance(listing, CsvLabelsListing) else None
    if parts_of is not None:  # the CSV says where each image goes
        parts = {part: parts_of == part for part in PARTS if (parts_of == part).any()}
    else:
        parts = _assign(listing.labels, len(listing.class_names), test=test, val=val, seed=seed,
                        groups=listing.groups)
    targets = _targets(listing)
    size = image_size or usual_side(listing.files)

    stage = out / STAGE
    linked = copied = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
        for name in {target.split("/", 1)[0] for target in targets}:
            for part in parts:
                (stage / part / name).mkdir(parents=True)
        for done, (file, relative) in enumerate(zip(listing.files, targets)):
            if stop is not None and stop.is_set() and done % 64 == 0:

                raise TaskStopped(f"split stopped after {done} of {len(listing.files)} files; nothing was kept")
            part = next(p for p, members in parts.items() if members[done])
            target = stage / part / relative
            if not copy and _link(file, target):
                linked += 1
            else:
                shutil.copy2(file, target)  # the original is only read
                copied += 1
        for part in parts:
            os.replace(stage / part, out / part)
        stage.rmdir()
    except OSError as exc:
        _remove_partial(out, existed)
        raise ResultsError(f"cannot split ({exc.strerror or exc}); nothing was kept",
                           path=getattr(exc, "filename", None) or out) from None
    except BaseException:
        _remove_partial(out, existed)
        raise

    counts = {part: np.bincount(listing.labels[members], minlength=len(listing.class_names)).tolist()
              for part, members in parts.items()}
    written: dict[str, object] = {"num_classes": len(listing.class_names), "train_dir": "training",
                                  "test_dir": "testing", "image_size": size, "seed": seed}
    if "validation" in parts:
        written["val_dir"] = "validation"
    if listing.groups is not None:
        written["group_pattern"] = group_pattern if not isinstance(listing, CsvLabelsListing) else GROUP_PREFIX
    data = DataParams.from_dict(written, base_dir=out)
    params_path = data.save(out / DATA_PARAMS_NAME)
    groups = len(set(listing.groups.tolist())) if listing.groups is not None else 0
    straddling = _straddling(listing.groups, parts) if listing.groups is not None else []
    return SplitResult(source, out, listing.class_names, counts, linked, copied, params_path, size, listing.skipped,
                       groups, parts_of is not None, straddling)


def _straddling(groups: np.ndarray, parts: dict[str, np.ndarray]) -> list[str]:
    """The groups found in more than one part (only a CSV's own split column can do that)."""
    seen: dict[str, set[str]] = {}
    for part, members in parts.items():
        for group in groups[members].tolist():
            seen.setdefault(str(group), set()).add(part)
    return sorted(g for g, where in seen.items() if len(where) > 1)


def _targets(listing: Listing) -> list[str]:
    """Where each file goes inside a part: ``class/name`` as in the class folders; a labels CSV's
    files go to their label's folder, named by their path (and group, so ``GROUP_PREFIX`` finds it)."""
    if not isinstance(listing, CsvLabelsListing):
        return list(listing.names)
    targets, taken = [], set()
    for k, (name, label) in enumerate(zip(listing.names, listing.labels.tolist())):
        flat = name.replace("/", "_")
        if listing.groups is not None:
            flat = f"{_safe(str(listing.groups[k]))}__{flat}"
        target = f"{_safe(listing.class_names[label])}/{flat}"
        stem, suffix = os.path.splitext(target)
        count = 1
        while target in taken:  # a/x.png and a_x.png: both kept
            count += 1
            target = f"{stem}-{count}{suffix}"
        taken.add(target)
        targets.append(target)
    return targets


def _safe(text: str) -> str:
    """A name one folder level deep that keeps ``__`` for the group separator."""
    cleaned = re.sub(r"_{2,}", "_", re.sub(r"[/\\\0]", "_", text)).strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def _check_out(source: Path, out: Path) -> None:
    if out == source or out.is_relative_to(source):
        raise UserError("the output folder is inside the folder being split; choose one outside it", path=out)
    if source.is_relative_to(out):
        raise UserError("the output folder holds the folder being split; choose a new or empty folder", path=out)
    if out.exists():
        if not out.is_dir():
            raise UserError("the output folder is a file; choose a new or empty folder", path=out)
        try:
            entries = os.listdir(out)
        except OSError as exc:
            raise UserError(f"the output folder cannot be read ({exc.strerror or exc})", path=out) from None
        if entries:
            raise UserError(f"the output folder is not empty ({len(entries)} entries); choose a new or empty folder "
                            "so nothing is mixed or overwritten", path=out)


def _assign(labels: np.ndarray, num_classes: int, *, test: float, val: float, seed: int,
            groups: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """A boolean mask of the images of each part, stratified by class (by whole groups when given)."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 — scikit-learn is slow to import

    if groups is not None:
        return _assign_groups(labels, groups, test=test, val=val, seed=seed)
    counts = np.bincount(labels, minlength=num_classes)
    wanted = 3 if val else 2
    if counts.min() < wanted:
        raise DatasetError(f"a stratified split into {wanted} parts needs at least {wanted} images in every class; "
                           f"the smallest class has {counts.min()}")
    index = np.arange(len(labels))
    try:
        rest, held = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
        if val:
            # val is a share of the whole set: of what is left after the test share, take val / (1 - test)
            rest, checking = train_test_split(rest, test_size=val / (1 - test), stratify=labels[rest], random_state=seed)
    except ValueError as exc:
        raise DatasetError(f"cannot make a stratified split of {len(labels)} images: {exc}") from None
    masks = {"training": np.zeros(len(labels), dtype=bool), "testing": np.zeros(len(labels), dtype=bool)}
    masks["training"][rest] = True
    masks["testing"][held] = True
    if val:
        masks["validation"] = np.zeros(len(labels), dtype=bool)
        masks["validation"][checking] = True
    return {part: masks[part] for part in PARTS if part in masks}


def _assign_groups(labels: np.ndarray, groups: np.ndarray, *, test: float, val: float,
                   seed: int) -> dict[str, np.ndarray]:
    """As ``_assign``, whole groups at a time: each share is about what was asked."""
    masks = {part: np.zeros(len(labels), dtype=bool) for part in PARTS}
    rest, held = group_split(labels, groups, test, seed, what="test")
    masks["testing"][held] = True
    if val:
        kept, checking = group_split(labels[rest], groups[rest], val / (1 - test), seed, what="validation")
        masks["validation"][rest[checking]] = True
        rest = rest[kept]
    masks["training"][rest] = True
    return {part: mask for part, mask in masks.items() if part != "validation" or val}


def _link(file: str, target: Path) -> bool:
    try:
        os.link(file, target)  # follows a symbolic link: the target file, not the link, is shared
    except OSError:
        return False  # another file system, links not allowed (FAT, some network shares): copy
    return True


def _remove_partial(out: Path, existed: bool) -> None:
    """Remove what this split wrote: the output folder was empty, so all in it is links and copies
    of ours (removing a hard link leaves the original)."""
    shutil.rmtree(out / STAGE, ignore_errors=True)
    for part in PARTS:
        shutil.rmtree(out / part, ignore_errors=True)
    if not existed:
        try:
            out.rmdir()
        except OSError:
            pass


def usual_side(files: list[str], limit: int = DEFAULT_MAX_SIDE) -> int:
    """The median longer side of a sample of the images (read from their headers), at most ``limit``."""
    step = max(1, len(files) // SIZE_PROBES)
    sides = []
    for path in files[::step]:
        try:
            with Image.open(path) as image:
                sides.append(max(image.size))
        except Exception:  # noqa: BLE001, S112  (an unreadable file is check's to report, not split's)
            continue
    if not sides:
        return 28
    return int(min(limit, max(4, np.median(sides))))
