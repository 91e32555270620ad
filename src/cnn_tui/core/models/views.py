"""Test-time augmentation's views: fixed, deterministic changes of a batch of images (the identity,
small shifts with the edge pixels repeated, a mirror image where the hyper params allow flips),
whose predicted probabilities ``training.evaluation`` averages.

The mirror image is a view only where training flipped images horizontally: mirrored digits,
text and scans are other images, and a model never shown them would be confused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHIFT_SHARE = 1 / 16  # a shift of about a sixteenth of the image, at least one pixel
MIRRORING_FLIPS = ("horizontal", "horizontal_and_vertical")


@dataclass(frozen=True)
class View:
    """One view: shift the content ``dx`` pixels right and ``dy`` down, then mirror it left to right."""

    name: str
    dx: int = 0
    dy: int = 0
    mirror: bool = False

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The view of a batch ``(n, height, width, channels)``; the pixels shifted in repeat the edge."""
        out = np.asarray(x)
        if self.dx or self.dy:
            pad_y, pad_x = abs(self.dy), abs(self.dx)
            padded = np.pad(out, ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
            top, left = pad_y - self.dy, pad_x - self.dx
            out = padded[:, top : top + out.shape[1], left : left + out.shape[2], :]
        if self.mirror:
            out = out[:, :, ::-1, :]
        return np.ascontiguousarray(out)


IDENTITY = View("identity")


def shift_pixels(image_size: int) -> int:
    return max(1, round(image_size * SHIFT_SHARE))


def tta_views(image_size: int, flip: str = "none") -> tuple[View, ...]:
    """The views test-time augmentation averages: the identity first (so its probabilities are the
    plain ones), four shifts by ``shift_pixels``, and the mirror image where ``flip`` mirrors."""
    s = shift_pixels(image_size)
    views = [IDENTITY, View(f"right {s}px", dx=s), View(f"left {s}px", dx=-s), View(f"down {s}px", dy=s),
             View(f"up {s}px", dy=-s)]
    if flip in MIRRORING_FLIPS:
        views.append(View("mirror", mirror=True))
    return tuple(views)


def views_of(net: Any) -> tuple[View, ...]:
    """A model's views: its image size, and the mirror only if its recorded hyper params flip."""
    flip = getattr(net.config, "flip", "none") if net.config is not None else "none"
    return tta_views(net.image_size, flip)


def chosen_tta(net: Any, override: bool | None = None) -> bool:
    """Whether to use test-time augmentation: ``override`` (--tta / --no-tta) if given, else what the
    model file records (its hyper params' ``tta``; a file without it: no)."""
    if override is not None:
        return bool(override)
    return bool(getattr(net.config, "tta", False)) if net.config is not None else False
