"""The augmentation preview of the hyper-params form: one sample image drawn 8 ways, as training
may see it with the augmentation fields typed so far. Redrawn a moment after they change (a
burst of keystrokes is one redraw); the Keras layers run in a worker thread, never on the UI
thread. The sample is the first image of the loaded training set, or of the training folder, read
in that thread too."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Label

from cnn_tui.core.models import augmentation
from cnn_tui.core.models.augmentation import AUGMENTATION_FIELDS, is_augmented
from cnn_tui.core.params.fields import HYPER_FIELDS, parse_text
from cnn_tui.core.params.files import ModelConfig
from cnn_tui.tui.widgets.images import image_class, to_pil

COUNT = 8
DEBOUNCE = 0.3  # seconds of quiet typing before the preview is worked out again
THUMB_WIDTH, THUMB_HEIGHT = 8, 4  # cells: 8 of them fit an 80-column dialog
NO_SAMPLE = "no sample image: give data params whose training folder holds images, or load the training set (l)"
_SPECS = {s.name: s for s in HYPER_FIELDS if s.name in AUGMENTATION_FIELDS}


def preview_config(texts: dict[str, str]) -> ModelConfig | None:
    """The augmentation a form's texts describe (the first of listed values, as training uses),
    or None while one of them does not parse."""
    values = {}
    for name, spec in _SPECS.items():
        if name not in texts:
            continue
        try:
            value = parse_text(spec, texts[name])
        except ValueError:
            return None
        values[name] = value[0] if isinstance(value, list) else value
    return ModelConfig(**values)


def first_image(data: Any, train_set: Any = None) -> Any:
    """A sample image (h, w, c floats in [0, 1]): the loaded training set's first, else the first
    image file of the training folder read at the data params' size; None when there is none
    (a CSV of pixels or CIFAR batches shows once the set is loaded)."""
    if train_set is not None and len(train_set):
        return train_set.x[0]
    if data is None:
        return None
    from cnn_tui.core.data import decode  # noqa: PLC0415 — numpy: not before the first frame

    path = _first_file(data.train_path)
    if path is None:
        return None
    if data.color_mode == "auto":
        channels = 3 if decode.probe_colour(str(path)) else 1
    else:
        channels = 3 if data.color_mode == "rgb" else 1
    try:
        pixels, _ = decode.decode(str(path), data.image_size, channels)
    except decode.DecodeError:
        return None
    return pixels.astype("float32") / 255.0


def _first_file(folder: Path) -> Path | None:
    from cnn_tui.core.data.decode import image_extensions  # noqa: PLC0415 — numpy: not before the first frame

    try:
        classes = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
        for class_dir in classes:
            names = sorted(e.name for e in os.scandir(class_dir) if e.is_file())
            for name in names:
                if Path(name).suffix.lower() in image_extensions():
                    return Path(class_dir) / name
    except OSError:
        return None
    return None


class AugmentPreview(Vertical):
    """``schedule(texts)`` asks for a redraw; ``samples`` holds the last arrays drawn (for ``drawn_config``),
    ``drawn`` counts redraws.
    ``sample`` gives the image (h, w, c floats in [0, 1]) or None; it is called once, in the worker thread."""

    def __init__(self, sample: Callable[[], Any], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="augment-preview")
        self.sample = sample
        self.image: Any = None
        self.looked = False  # whether ``sample`` was called
        self.config: ModelConfig | None = None  # the one asked for last
        self.samples: Any = None
        self.drawn_config: ModelConfig | None = None  # what ``samples`` show
        self.drawn = 0
        self.timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(Text("Augmentation preview", style="dim"), classes="preview-title")
        yield Horizontal(classes="preview-thumbs")

    def title(self, text: Text) -> None:
        self.query_one(".preview-title", Label).update(text)

    def schedule(self, texts: dict[str, str]) -> None:
        """Draw again a moment from now, unless nothing that matters changed."""
        config = preview_config(texts)
        if config is None or config == self.config:
            return
        self.config = config
        if self.timer is not None:
            self.timer.stop()
        self.timer = self.set_timer(DEBOUNCE, self.start)

    def start(self) -> None:
        self.timer = None
        config = self.config
        self.title(Text("Augmentation preview: working it out…", style="dim"))
        self.run_worker(lambda: self.work(config), thread=True, exclusive=True, group="augment-preview")

    def work(self, config: ModelConfig) -> None:
        """In a worker thread: Keras (imported here the first time) applies the layers."""
        try:
            if not self.looked:
                self.image, self.looked = self.sample(), True
            if self.image is None:
                self.app.call_from_thread(self.failed, config, NO_SAMPLE)
                return
            samples = augmentation.augmented_samples(self.image, config, COUNT, seed=0)  # through the module: tests wrap it
        except Exception as exc:  # noqa: BLE001 - Keras missing or a layer refusing: said in the title
            self.app.call_from_thread(self.failed, config, str(exc))
            return
        self.app.call_from_thread(self.draw, config, samples)

    def failed(self, config: ModelConfig, reason: str) -> None:
        if self.is_attached and config == self.config:
            self.title(Text(f"Augmentation preview: {reason}", style="dim" if reason == NO_SAMPLE else "yellow"))

    async def draw(self, config: ModelConfig, samples: Any) -> None:
        if not self.is_attached or config != self.config:  # closed, or a newer one is on its way
            return
        self.samples, self.drawn_config = samples, config
        self.drawn += 1
        if is_augmented(config):
            self.title(Text("Augmentation preview: one training image, 8 ways training may see it"))
        else:
            self.title(Text("Augmentation preview: no augmentation, so training sees every image as it is",
                            style="dim"))
        thumbs = self.query_one(".preview-thumbs", Horizontal)
        await thumbs.remove_children()
        widget = image_class()
        if widget is None:
            await thumbs.mount(Label(f"{len(samples)} samples (no image preview in this terminal)"))
            return
        shown = samples if is_augmented(config) else samples[:1]
        images = []
        for sample in shown:
            thumb = widget(to_pil(sample), classes="preview-thumb")
            thumb.styles.width, thumb.styles.height = THUMB_WIDTH, THUMB_HEIGHT
            images.append(thumb)
        await thumbs.mount_all(images)
