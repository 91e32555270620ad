"""Sample images per class, drawn in the terminal with textual-image.

textual-image picks the best way the terminal offers (Sixel, Kitty graphics, or
coloured half blocks, which work over any SSH connection). ``tui.terminal`` asks the
terminal which while the app starts, and textual-image (with numpy and Pillow) is
imported when the first samples are shown. ``CNN_TUI_IMAGES=halfcell`` forces half
blocks (useful in tmux builds that pass Sixel through badly).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Label

from cnn_tui.tui import terminal
from cnn_tui.tui.widgets.tables import short

THUMB_WIDTH = 10  # cells; half blocks give 2 pixel rows per cell, so 10x5 cells show 10x10 pixels
THUMB_HEIGHT = 5


def image_class() -> Any:
    """The widget class that draws thumbnails, or None when previews are off (``CNN_TUI_IMAGES=none``,
    set by ``launch`` when textual-image cannot start in this terminal)."""
    choice = os.environ.get("CNN_TUI_IMAGES", "auto").lower()
    if choice == "none":
        return None
    if choice == "auto" and terminal.GRAPHICS is not None:
        choice = terminal.GRAPHICS.protocol or "none"
        if choice == "none":
            return None
    try:
        images = terminal.image_module()
    except Exception as exc:  # noqa: BLE001 - not installed, or a terminal it cannot handle: no previews
        logging.getLogger("cnn_tui.tui").warning("image previews off: textual-image could not start (%r)", exc)
        os.environ["CNN_TUI_IMAGES"] = "none"
        return None
    return {
        "halfcell": images.HalfcellImage,
        "unicode": images.UnicodeImage,
        "sixel": images.SixelImage,
        "tgp": images.TGPImage,
    }.get(choice, images.Image)


def to_pil(pixels: Any) -> Any:
    """A float [0, 1] (h, w, 1 or 3) array as a PIL image."""
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)
    from PIL import Image  # noqa: PLC0415 — Pillow is not loaded before an image is read (the first frame, --help)

    data = np.clip(np.asarray(pixels) * 255.0, 0, 255).astype(np.uint8)
    if data.shape[-1] == 1:
        return Image.fromarray(data[..., 0], mode="L")
    return Image.fromarray(data, mode="RGB")


CARD_HEIGHT = 1 + THUMB_HEIGHT + 2  # title, thumbnails, border


class ClassCard(Vertical):
    def __init__(self, name: str, images: list[Any], widget: Any) -> None:
        super().__init__(classes="class-card")
        self.class_name = name
        self.images = images
        self.widget = widget
        if widget is not None:
            # a fixed size: laying out a grid of cards sized by their content costs the UI ~100 ms
            self.styles.height = CARD_HEIGHT

    def compose(self) -> ComposeResult:
        yield Label(short(self.class_name, 3 * (THUMB_WIDTH + 1)), classes="card-title", markup=False)  # a folder name
        widget = self.widget
        if widget is None:
            yield Label(f"{len(self.images)} samples (no image preview in this terminal)", classes="thumbs")
            return
        with Horizontal(classes="thumbs") as row:
            row.styles.height = THUMB_HEIGHT
            for image in self.images:
                thumb = widget(image, classes="thumb")
                thumb.styles.width = THUMB_WIDTH
                thumb.styles.height = THUMB_HEIGHT
                yield thumb


class SampleGrid(Grid):
    """A card per class with its first few (shuffled) images: the seed's "samples" check."""

    per_class = 3

    async def show(self, images: Any) -> None:
        await self.remove_children()
        self.display = images is not None
        if images is None:
            return
        widget = image_class()
        self.styles.grid_rows = str(CARD_HEIGHT) if widget is not None else "auto"
        cards = []
        for name, indices in images.examples(self.per_class).items():
            cards.append(ClassCard(name, [to_pil(images.x[i]) for i in indices], widget))
        await self.mount_all(cards)
        self.fit_columns()

    def on_resize(self) -> None:
        self.fit_columns()

    def fit_columns(self) -> None:
        card = self.per_class * (THUMB_WIDTH + 1) + 2
        self.styles.grid_size_columns = max(1, self.size.width // card)
