"""The augmentation preview of the hyper-params form: one sample image drawn 8 ways, as training
may see it with the augmentation fields typed so far; with mixup or cutmix, two images of two
classes (shown first) mixed 8 ways, each with its mixed label ("0.7 cat + 0.3 dog"). Redrawn a moment after they change (a
burst of keystrokes is one redraw); the Keras layers run in a worker thread, never on the UI
thread. The samples are the first images of two classes of the loaded training set, or of the training
folder, read in that thread too."""

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
from cnn_tui.core.models.augmentation import AUGMENTATION_FIELDS, is_augmented, mixes_labels
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


def sample_images(data: Any, train_set: Any = None, count: int = 2) -> list[tuple[Any, str]]:
    """Up to ``count`` sample images of as many classes, each with its class name: the first of
    each class of the loaded training set, else the first image file of each class folder of the
    training folder (read at the data params' size); empty when there is none."""
    if train_set is not None and len(train_set):
        out: list[tuple[Any, str]] = []
        for index, label in enumerate(train_set.y):
            if all(name != train_set.class_names[int(label)] for _, name in out):
                out.append((train_set.x[index], train_set.class_names[int(label)]))
                if len(out) == count:
                    break
        return out
    if data is None:
        return []
    from cnn_tui.core.data import decode  # noqa: PLC0415 — numpy: not before the first frame

    samples = []
    paths = _first_files(data.train_path, count)
    if not paths:
        return []
    if data.color_mode == "auto":  # the first image decides for all, so that they mix
        channels = 3 if decode.probe_colour(str(paths[0])) else 1
    else:
        channels = 3 if data.color_mode == "rgb" else 1
    for path in paths:
        image = _read_image(data, path, channels)
        if image is not None:
            samples.append((image, path.parent.name))
    return samples


def _read_image(data: Any, path: Path, channels: int) -> Any:
    from cnn_tui.core.data import decode  # noqa: PLC0415 — numpy: not before the first frame

    try:
        pixels, _ = decode.decode(str(path), data.image_size, channels)
    except decode.DecodeError:
        return None
    return pixels.astype("float32") / 255.0


def _first_files(folder: Path, count: int) -> list[Path]:
    """The first image file of each of the first ``count`` class folders that hold one."""
    from cnn_tui.core.data.decode import image_extensions  # noqa: PLC0415 — numpy: not before the first frame

    found: list[Path] = []
    try:
        classes = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
        for class_dir in classes:
            names = sorted(e.name for e in os.scandir(class_dir) if e.is_file())
            first = next((name for name in names if Path(name).suffix.lower() in image_extensions()), None)
            if first is not None:
                found.append(Path(class_dir) / first)
                if len(found) == count:
                    break
    except OSError:
        return found
    return found


class AugmentPreview(Vertical):
    """``schedule(texts)`` asks for a redraw; ``samples`` holds the last arrays drawn (for ``drawn_config``),
    ``shares`` the share of the first image in each mixed label (None unless mixing), ``drawn`` counts redraws.
    ``sample`` gives the image (h, w, c floats in [0, 1]) or None, or a list of (image, class name) of
    different classes (``sample_images``: two, so that mixing can be shown); it is called once, in the
    worker thread."""

    def __init__(self, sample: Callable[[], Any], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes="augment-preview")
        self.sample = sample
        self.image: Any = None
        self.partner: Any = None  # a second image, of another class: what mixing mixes the first with
        self.names: tuple[str, str] = ("image 1", "image 2")
        self.shares: Any = None
        self.looked = False  # whether ``sample`` was called
        self.config: ModelConfig | None = None  # the one asked for last
        self.samples: Any = None
        self.drawn_config: ModelConfig | None = None  # what ``samples`` show
        self.drawn = 0
        self.timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(Text("Augmentation preview", style="dim"), classes="preview-title")
        yield Horizontal(classes="preview-sources")
        yield Horizontal(classes="preview-thumbs")
        yield Label("", classes="preview-labels")

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
                self.take_samples(self.sample())
            if self.image is None:
                self.app.call_from_thread(self.failed, config, NO_SAMPLE)
                return
            shares = None
            if mixes_labels(config) and self.partner is not None:
                samples, shares = augmentation.mixed_samples(self.image, self.partner, config, COUNT, seed=0)
            else:  # through the module: tests wrap it
                samples = augmentation.augmented_samples(self.image, config, COUNT, seed=0)
        except Exception as exc:  # noqa: BLE001 - Keras missing or a layer refusing: said in the title
            self.app.call_from_thread(self.failed, config, str(exc))
            return
        self.app.call_from_thread(self.draw, config, samples, shares)

    def take_samples(self, given: Any) -> None:
        self.looked = True
        if isinstance(given, list):
            if given:
                self.image, first = given[0]
                self.names = (first, self.names[1])
            if len(given) > 1:
                self.partner, second = given[1]
                self.names = (self.names[0], second)
        else:
            self.image = given

    def failed(self, config: ModelConfig, reason: str) -> None:
        if self.is_attached and config == self.config:
            self.title(Text(f"Augmentation preview: {reason}", style="dim" if reason == NO_SAMPLE else "yellow"))

    def mixed_labels(self, shares: Any) -> list[str]:
        """Each mixed sample's label, e.g. "0.7 cat + 0.3 dog"."""
        first, second = self.names
        return [f"{share:.1f} {first} + {1 - share:.1f} {second}" for share in shares]

    async def draw(self, config: ModelConfig, samples: Any, shares: Any = None) -> None:
        if not self.is_attached or config != self.config:  # closed, or a newer one is on its way
            return
        self.samples, self.shares, self.drawn_config = samples, shares, config
        self.drawn += 1
        first, second = self.names
        if shares is not None:
            self.title(Text(f"Augmentation preview: a '{first}' and a '{second}' training image (left), "
                            "mixed 8 ways as training may mix them"))
        elif is_augmented(config):
            more = " (mixing needs images of two classes)" if mixes_labels(config) else ""
            self.title(Text(f"Augmentation preview: one training image, 8 ways training may see it{more}"))
        else:
            self.title(Text("Augmentation preview: no augmentation, so training sees every image as it is",
                            style="dim"))
        labels = self.query_one(".preview-labels", Label)
        labels.update("  ".join(f"{i}: {text}" for i, text in enumerate(self.mixed_labels(shares), 1))
                      if shares is not None else "")
        labels.display = shares is not None
        sources = self.query_one(".preview-sources", Horizontal)
        thumbs = self.query_one(".preview-thumbs", Horizontal)
        await sources.remove_children()
        await thumbs.remove_children()
        sources.display = shares is not None
        widget = image_class()
        if widget is None:
            await thumbs.mount(Label(f"{len(samples)} samples (no image preview in this terminal)"))
            return
        if shares is not None:
            await sources.mount_all([self.thumb(widget, self.image, "preview-source"), Label(first),
                                     self.thumb(widget, self.partner, "preview-source"), Label(second)])
        shown = samples if is_augmented(config) else samples[:1]
        await thumbs.mount_all([self.thumb(widget, sample, "preview-thumb") for sample in shown])

    @staticmethod
    def thumb(widget: Any, image: Any, classes: str) -> Any:
        thumb = widget(to_pil(image), classes=classes)
        thumb.styles.width, thumb.styles.height = THUMB_WIDTH, THUMB_HEIGHT
        return thumb
