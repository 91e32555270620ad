"""PNG figures of what ``core.inspect.explain`` finds: Grad-CAM (image, heatmap, overlay) and the feature
maps of every convolution. Drawn like ``core.inspect.reports``: a matplotlib ``Figure`` on the Agg canvas,
written atomically."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import fileio
from cnn_tui.core.inspect import explain
from cnn_tui.core.inspect.reports import _figure, _save

SHOWN = 224  # pixels the Grad-CAM panels are drawn at: an 8x8 digit's heatmap needs room to be smooth
MAX_CHANNELS = 32  # channels per layer in the feature-map figure (the most active ones)
COLUMNS = 16  # channels per row of a layer's grid


def figure_name(prefix: str, image: str | Path) -> str:
    """``PREFIX-FOLDER-STEM-HASH.png`` for the figure of ``image``: the folder (often the class) and the
    stem keep it readable, six hex digits of the full path's hash keep ``a/img.png`` and ``b/img.png``
    (real sets repeat ``0001.png`` across class folders) from overwriting each other."""
    path = Path(image).expanduser().resolve()
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:6]
    parts = [part for part in (path.parent.name, path.stem) if part]
    readable = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part)[:40] for part in parts)
    return f"{prefix}-{readable}-{digest}.png"


def _title(name: str, probabilities: np.ndarray, class_names: list[str]) -> str:
    best = int(np.argmax(probabilities))
    return f"{fileio.readable(name)}: predicted {fileio.readable(class_names[best])} ({probabilities[best]:.1%})"


def _image_axis(axis: Any, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        axis.imshow(np.clip(image, 0, 1), interpolation="nearest")
    axis.set_axis_off()


def plot_grad_cam(cams: explain.GradCam | list[explain.GradCam], path: Path, name: str = "image") -> Path:
    """One row of three panels per heatmap (the predicted class first, then the true one when they
    differ, as the TUI shows them): the image as the model sees it, the heatmap, the heatmap over the image."""
    cams = [cams] if isinstance(cams, explain.GradCam) else list(cams)
    figure = _figure(9.6, 0.4 + 3.4 * len(cams))
    figure.suptitle(_title(name, cams[0].probabilities, cams[0].class_names))
    rows = figure.subplots(len(cams), 3, squeeze=False)
    for cam, (left, middle, right) in zip(cams, rows):
        _image_axis(left, cam.image)
        left.set_title("image")
        heat = middle.imshow(cam.upsampled(SHOWN), cmap="jet", vmin=0, vmax=1)
        middle.set_axis_off()
        middle.set_title(f"{explain.method_label(cam.method)} of {fileio.readable(cam.explained)}\n"
                         f"over {fileio.readable(cam.layer)}", fontsize=9)
        figure.colorbar(heat, ax=middle, fraction=0.046, pad=0.04)
        right.imshow(explain.overlay(cam, SHOWN))
        right.set_axis_off()
        right.set_title("overlay")
    return _save(figure, path)


def plot_features(features: explain.Features, path: Path, name: str = "image") -> Path:
    """The image and its prediction, then one grid per convolution (up to ``MAX_CHANNELS`` channels each,
    every channel scaled on its own: bright is where that filter responds)."""
    grids = []
    pictures, points = features.drawn()
    for fmap in pictures:
        grid, shown = explain.mosaic(fmap.activations, max_channels=MAX_CHANNELS, columns=COLUMNS)
        h, w, c = fmap.activations.shape
        what = f"{c} channels" if len(shown) == c else f"the {len(shown)} most active of {c} channels"
        grids.append((grid, f"{fileio.readable(fmap.layer)} ({fmap.kind}) · {h}×{w} · {what}"))
    width = 10.0
    heights = [2.2] + [max(0.9, min(5.0, width * g.shape[0] / g.shape[1])) + 0.3 for g, _ in grids]
    figure = _figure(width, sum(heights) + 0.6)
    title = _title(name, features.probabilities, features.class_names)
    if points:
        title += f"\n({len(points)} convolution{'s' if len(points) > 1 else ''} with 1×1 outputs not drawn)"
    figure.suptitle(title)
    axes = figure.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    _image_axis(axes[0], features.image)
    for axis, (grid, label) in zip(axes[1:], grids):
        axis.imshow(grid, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(label, fontsize=9, loc="left")
        axis.set_axis_off()
    return _save(figure, path)
