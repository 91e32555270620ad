"""The params field table and one value's parsing: every data and hyper field as a ``FieldSpec``
(type, range, default, form section, when it applies), and how a value is coerced, checked,
parsed from form text and shown.

``core.params.files`` (the files and configurations), the forms and ``--set`` all read this table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnn_tui.core.architectures import ARCHITECTURE_NAMES, BACKBONE_NAMES

Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class FieldSpec:
    """One JSON field: its type, the range it must lie in, and how forms show it."""

    name: str
    kind: type  # int, float, str or bool
    label: str
    check: Check | None = None
    default: Any = None
    required: bool = True
    listable: bool = False  # may hold several values (tuning)
    choices: tuple[str, ...] = ()
    group: str = "network"  # network | augmentation | training: the form's sections
    # Shown and used only when another field holds one of some values, e.g.
    # ("optimizer", ("sgd",)) for momentum. With a list (a grid), any listed value counts.
    shown_if: tuple[str, tuple[Any, ...]] | None = None
    help: str = ""

    @property
    def scalar_default(self) -> Any:
        """The value a configuration uses when the file leaves the field out."""
        return self.default[0] if isinstance(self.default, list) else self.default


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low:g}, got {v:g}"


def _between(low: float, high: float, *, closed_high: bool = False, closed_low: bool = True) -> Check:
    left, right = ("[" if closed_low else "("), ("]" if closed_high else ")")

    def check(v: float) -> str | None:
        ok_low = v >= low if closed_low else v > low
        ok_high = v <= high if closed_high else v < high
        return None if ok_low and ok_high else f"must be in {left}{low:g}, {high:g}{right}, got {v:g}"

    return check


def _positive(v: float) -> str | None:
    return None if v > 0 else f"must be greater than 0, got {v:g}"


def _fraction(low: float = 0.0, high: float = 1.0) -> Check:
    return _between(low, high)


def _hyper(name: str, kind: type, label: str, check: Check | None, default: Any, group: str,
           shown_if: tuple[str, tuple[Any, ...]] | None = None, choices: tuple[str, ...] = (), help: str = "") -> FieldSpec:
    """A hyper field: optional (its default is the seed's behaviour) and listable (tunable)."""
    return FieldSpec(name, kind, label, check, default, required=False, listable=True, choices=choices,
                     group=group, shown_if=shown_if, help=help)


# Which architectures each network field applies to (the registry's names, see core.architectures).
_SEED_AND_CNN = ("architecture", ("seed_cnn", "cnn"))
_CONV = ("architecture", ("seed_cnn", "cnn", "resnet"))
_CNN = ("architecture", ("cnn",))
_BLOCKS = ("architecture", ("cnn", "resnet"))
_BACKBONES = ("architecture", BACKBONE_NAMES)

FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("exponential", "cosine", "constant", "one_cycle")

HYPER_FIELDS: tuple[FieldSpec, ...] = (
    # network
    _hyper("architecture", str, "Architecture", None, "seed_cnn", "network", choices=ARCHITECTURE_NAMES,
           help="seed_cnn (the original CNN App's network), cnn (configurable blocks), resnet, or a pretrained backbone"),
    _hyper("kernel_size", int, "Kernel size", _at_least(1), 3, "network", _CONV),
    _hyper("num_filters", int, "Num filters", _at_least(1), [32, 40], "network", _CONV,
           help="filters of the first block; each further cnn/resnet block doubles them"),
    _hyper("blocks", int, "Conv blocks", _at_least(1), 3, "network", _BLOCKS,
           help="convolution blocks, each ending in a 2x2 down-sampling"),
    _hyper("convs_per_block", int, "Convs per block", _at_least(1), 2, "network", _CNN),
    _hyper("batch_norm", bool, "Batch norm", None, True, "network", _CNN),
    _hyper("pooling", str, "Pooling", None, "max", "network", _CNN, choices=("max", "avg")),
    _hyper("head", str, "Head", None, "gap", "network", _CNN, choices=("gap", "flatten"),
           help="gap: global average pooling (few weights, any image size); flatten: as the seed"),
    _hyper("dense_layers", int, "Dense layers", _at_least(0), 1, "network", _CNN),
    _hyper("num_units", int, "Num units", _at_least(1), [512, 800], "network", _SEED_AND_CNN),
    _hyper("drop_out", float, "Drop out", _between(0, 1), 0.2, "network"),
    _hyper("weights", str, "Backbone weights", None, "none", "network", _BACKBONES,
           help="none (random), imagenet (downloaded once into ~/.keras/models/), or a weights file's path"),
    _hyper("freeze_epochs", int, "Frozen epochs", _at_least(0), 3, "network", _BACKBONES,
           help="epochs that train the new head with the backbone frozen, before fine-tuning"),
    _hyper("unfreeze_layers", int, "Unfrozen layers", _at_least(0), 20, "network", _BACKBONES,
           help="the backbone's top layers trained while fine-tuning (batch norm stays frozen)"),
    _hyper("fine_tune_rate", float, "Fine-tune rate factor", _between(0, 1, closed_low=False, closed_high=True), 0.1,
           "network", _BACKBONES, help="the learning rate while fine-tuning, as a share of init_rate"),
    # augmentation: Keras preprocessing layers in the model, active only while training
    _hyper("flip", str, "Flip", None, "none", "augmentation", choices=FLIPS),
    _hyper("rotation", float, "Rotation", _between(0, 0.5, closed_high=True), 0.0, "augmentation",
           help="up to this share of a full turn either way (0.05 is 18 degrees)"),
    _hyper("zoom", float, "Zoom", _fraction(), 0.0, "augmentation", help="up to this share in or out"),
    _hyper("translation", float, "Translation", _fraction(), 0.0, "augmentation",
           help="up to this share of the width and height"),
    _hyper("contrast", float, "Contrast", _fraction(), 0.0, "augmentation"),
    _hyper("brightness", float, "Brightness", _fraction(), 0.0, "augmentation"),
    # strong augmentation and mixing: applied to the training batches only (core.data.feeding), never in the model
    _hyper("rand_augment", float, "RandAugment", _between(0, 1, closed_high=True), 0.0, "augmentation",
           help="RandAugment's magnitude (0..1, Keras's factor): random shears, shifts, turns and colour changes; 0 is off"),
    _hyper("rand_augment_ops", int, "RandAugment ops", _between(1, 11, closed_high=True), 2, "augmentation",
           help="how many of RandAugment's operations each batch gets, one after another"),
    _hyper("random_erasing", float, "Random erasing", _between(0, 1, closed_high=True), 0.0, "augmentation",
           help="the share of training images that get a random patch replaced by noise; 0 is off"),
    _hyper("mixup", float, "MixUp alpha", _between(0, 10, closed_high=True), 0.0, "augmentation",
           help="blend pairs of training images and their labels (alpha of the Beta distribution, 0.2 is usual); 0 is off"),
    _hyper("cutmix", float, "CutMix alpha", _between(0, 1, closed_high=True), 0.0, "augmentation",
           help="paste a patch of one training image into another, labels mixed by area (alpha up to 1, 1 is usual); 0 is off; "
                "with mixup too, each batch gets one or the other"),
    # training
    _hyper("optimizer", str, "Optimizer", None, "sgd", "training", choices=OPTIMIZERS),
    _hyper("init_rate", float, "Initial rate", _positive, [0.02, 0.01], "training"),
    _hyper("momentum", float, "Momentum", _between(0, 1), 0.9, "training", ("optimizer", ("sgd",))),
    _hyper("weight_decay", float, "Weight decay", _at_least(0), 0.0, "training"),
    _hyper("schedule", str, "Rate schedule", None, "exponential", "training", choices=SCHEDULES,
           help="exponential (as the seed), cosine (down to 0 over the whole training), constant, "
           "one_cycle (up to init_rate over warmup_fraction of the steps, then a cosine down to about 0)"),
    _hyper("decay_steps", int, "Decay steps", _at_least(1), 400, "training", ("schedule", ("exponential",))),
    _hyper("decay_rate", float, "Decay rate", _between(0, 1, closed_low=False, closed_high=True), 0.9, "training",
           ("schedule", ("exponential",))),
    _hyper("warmup_epochs", int, "Warm-up epochs", _at_least(0), 0, "training", ("schedule", ("cosine",)),
           help="epochs the rate rises linearly from 0 before the cosine decay"),
    # one_cycle (lrfind): the share of all training steps the rate rises over, as fastai's pct_start
    _hyper("warmup_fraction", float, "Warm-up fraction", _between(0, 1), 0.25, "training", ("schedule", ("one_cycle",)),
           help="one_cycle: the share of all training steps the rate rises from init_rate/25 to init_rate"),
    _hyper("epochs", int, "Epochs", _at_least(1), [5, 10], "training"),
    _hyper("batch_size", int, "Batch size", _at_least(1), [64, 80], "training"),
    _hyper("patience", int, "Early-stop patience", _at_least(0), 0, "training",
           help="stop after this many epochs without a better validation loss and keep the best epoch; 0 is off"),
    _hyper("reduce_on_plateau", int, "Plateau patience", _at_least(0), 0, "training", ("schedule", ("constant",)),
           help="halve the rate after this many epochs without a better loss (constant schedule); 0 is off"),
    _hyper("class_weight", str, "Class weight", None, "none", "training", choices=("none", "balanced"),
           help="balanced: weigh each class by the inverse of its share (for imbalanced folders)"),
    _hyper("label_smoothing", float, "Label smoothing", _between(0, 1), 0.0, "training"),
    _hyper("mixed_precision", bool, "Mixed precision", None, False, "training",
           help="float16 compute on a GPU (ignored on a CPU)"),
    # weight averaging and test-time augmentation (issue 21, items 4 and 5)
    _hyper("ema", float, "Weight averaging (EMA)", _between(0, 1), 0.0, "training",
           help="decay of an exponential moving average of the weights (e.g. 0.999): validation, checkpoints and "
           "the saved model use the averaged weights; 0 is off"),
    _hyper("tta", bool, "Test-time augmentation", None, False, "training",
           help="evaluate and classify by averaging each image's shifted (and, where flips are on, mirrored) "
           "views; recorded in the model file (--tta / --no-tta override it)"),
)

# The seed app's ten fields: its files hold exactly these, and a new file starts from them.
SEED_NAMES = ("init_rate", "decay_steps", "decay_rate", "kernel_size", "num_filters", "num_units", "momentum",
              "drop_out", "epochs", "batch_size")
HYPER_GROUPS = ("network", "augmentation", "training")

COLOR_MODES = ("auto", "grayscale", "rgb")

DATA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("num_classes", int, "Number of classes", _at_least(2), 10),
    FieldSpec("train_dir", str, "Training folder", None, ""),
    FieldSpec("test_dir", str, "Testing folder", None, ""),
    FieldSpec("image_size", int, "Image size", _between(4, 2048, closed_high=True), 28),
    FieldSpec("result_dir", str, "Results folder", None, None, required=False),
    # Optional fields the seed does not have; their defaults are its behaviour.
    FieldSpec("color_mode", str, "Colour mode", None, "auto", required=False, choices=COLOR_MODES),
    FieldSpec("validation_split", float, "Validation fraction", _between(0, 1, closed_low=False), 0.2, required=False),
    FieldSpec("seed", int, "Random seed", _at_least(0), 42, required=False),
    # Labels from a CSV of image paths, a fixed validation folder, groups (patients): "" is unused / detected.
    FieldSpec("labels_csv", str, "Labels CSV", None, "", required=False,
              help="a CSV of image paths and labels (train_dir and test_dir may then be left empty)"),
    FieldSpec("images_dir", str, "Images folder", None, "", required=False,
              help="the folder the CSV's paths are relative to (default: the CSV's folder)"),
    FieldSpec("path_column", str, "Path column", None, "", required=False,
              help="default: the first of path, filename, image, file"),
    FieldSpec("label_column", str, "Label column", None, "", required=False,
              help="default: the first of label, class"),
    FieldSpec("split_column", str, "Split column", None, "", required=False,
              help="train / val / test per row (default: a column named split, if any)"),
    FieldSpec("group_column", str, "Group column", None, "", required=False,
              help="a group (patient) per row, never split apart (default: a column named group or patient)"),
    FieldSpec("group_pattern", str, "Group pattern", None, "", required=False,
              help="class folders: a regular expression whose first group, found in a file name, is its group"),
    FieldSpec("val_dir", str, "Validation folder", None, "", required=False,
              help="a fixed validation set (class folders), used instead of holding out validation_split"),
)

HYPER_NAMES = tuple(f.name for f in HYPER_FIELDS)

# No field has a use for numbers beyond this; bigger ones would overflow float formatting.
MAX_NUMBER = 2**31 - 1


# ---------------------------------------------------------------- value parsing


def coerce_scalar(spec: FieldSpec, value: Any) -> Any:
    """Return ``value`` as the field's type, or raise ``ValueError`` saying why."""
    if spec.kind is str:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {_show(value)}")
        if spec.choices and value not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {_show(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if spec.kind is int else "a number"
        raise ValueError(f"must be {kind}, got {_show(value)}")
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        raise ValueError(f"is far too large, got {_show(value)}")
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError(f"must be a finite number of sensible size, got {value}")
    if spec.kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"must be a whole number, got {value:g}")
        value = int(value)
    else:
        value = float(value)
    if spec.check and (problem := spec.check(value)):
        raise ValueError(problem)
    return value


def coerce_values(spec: FieldSpec, value: Any) -> list[Any]:
    """Validate a hyper field that may be a scalar or a list; return the list of values."""
    if isinstance(value, list):
        if not spec.listable:
            raise ValueError(f"must be a single value, got a list {_show(value)}")
        if not value:
            raise ValueError("is an empty list; give at least one value")
        return [coerce_scalar(spec, item) for item in value]
    return [coerce_scalar(spec, value)]


def parse_text(spec: FieldSpec, text: str) -> Any:
    """Parse what a person typed in a form: ``0.02, 0.01`` for list fields, one value otherwise.

    Returns a scalar for one value and a list for several, as the JSON would hold them.
    """
    parts = [p.strip() for p in text.split(",")] if spec.listable else [text.strip()]
    if any(p == "" for p in parts):
        raise ValueError("is empty" if len(parts) == 1 else "has an empty value between commas")
    values = [_parse_number(spec, p) for p in parts]
    checked = [coerce_scalar(spec, v) for v in values]
    return checked[0] if len(checked) == 1 else checked


def format_text(value: Any) -> str:
    """The inverse of ``parse_text``: how a value is shown in a form."""
    if isinstance(value, list):
        return ",".join(format_text(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _parse_number(spec: FieldSpec, text: str) -> Any:
    if spec.kind is str:
        return text
    if spec.kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"must be true or false, got {text!r}")
    try:
        return int(text) if spec.kind is int else float(text)
    except ValueError:
        try:
            as_float = float(text)  # "5.0" for an int field is fine, "ten" is not
        except ValueError:
            kind = "a whole number" if spec.kind is int else "a number"
            raise ValueError(f"must be {kind}, got {text!r}") from None
        return as_float


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
