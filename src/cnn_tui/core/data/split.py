"""Split one folder-per-class set into training and testing folders (and a validation folder).

The split is stratified (scikit-learn's ``train_test_split`` with ``stratify``), so every
class keeps its share in each part, and reproducible with a seed. Files are hard-linked
where the file system allows (no extra space, instant), copied otherwise or on request;
an original is never moved, changed or deleted. Everything is written into a hidden folder
inside the output folder first and moved into place at the end, so a stop or a full disk
leaves no half split behind. The result gets a data-params file naming its folders.

``validation/`` is written only when asked (``val > 0``): training in cnn-tui holds out
its own validation share (``validation_split``) from ``training/``, so a fixed validation
folder is for other tools, or to evaluate on a second held-out set (as a ``test_dir``).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cnn_tui.core.data.listing import SkippedFile
from cnn_tui.core.data.locations import list_location
from cnn_tui.core.errors import DatasetError, ResultsError, TaskStopped, UserError
from cnn_tui.core.params.files import DataParams

PARTS = ("training", "validation", "testing")
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
) -> SplitResult:
    """Write ``out/training``, ``out/testing`` (``out/validation``) and ``out/data_params.json``."""
    check_fractions(test, val)
    source, out = Path(source).resolve(), Path(out).resolve()
    listing = list_location(source, what="source")
    if not listing.images_are_files:  # a CSV of pixels or CIFAR batches: no files to link
        raise UserError("split works on a folder with one sub-folder per class, not on a CSV or CIFAR batches",
                        path=source)
    _check_out(source, out)
    existed = out.exists()
    parts = _assign(listing.labels, len(listing.class_names), test=test, val=val, seed=seed)
    size = image_size or usual_side(listing.files)

    stage = out / STAGE
    linked = copied = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
        for name in listing.class_names:
            for part in parts:
                (stage / part / name).mkdir(parents=True)
        for done, (file, relative, _label) in enumerate(zip(listing.files, listing.names, listing.labels.tolist())):
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
    data = DataParams.from_dict(
        {"num_classes": len(listing.class_names), "train_dir": "training", "test_dir": "testing",
         "image_size": size, "seed": seed},
        base_dir=out,
    )
    params_path = data.save(out / DATA_PARAMS_NAME)
    return SplitResult(source, out, listing.class_names, counts, linked, copied, params_path, size, listing.skipped)


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


def _assign(labels: np.ndarray, num_classes: int, *, test: float, val: float, seed: int) -> dict[str, np.ndarray]:
    """A boolean mask of the images of each part, stratified by class."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 — scikit-learn is slow to import

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
