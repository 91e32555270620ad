"""Named hyper-params sets: ``cnn-tui presets NAME > h.json`` starts a file from one.

Each preset is a complete hyper-params file: every field of ``fields.HYPER_FIELDS`` is
written out (those that do not apply to its architecture or optimizer at their defaults),
so the printed file also documents every option there is. The choices, and the figures
behind them, are in docs/benchmarks.md (accuracy group).

- ``seed``: the seed app's defaults, lists included (training uses each list's first value).
- ``fast``: two blocks of one convolution, a flatten head, Adam on a cosine schedule, ten epochs
  of batches of 32, and neither batch norm nor augmentation. Batch norm's running statistics
  (which inference uses) need several hundred steps to settle, more than a short training on a
  small set has: with it, eight epochs of 64 gave 92-96 % on the demo digits, and ten of 32 were
  as accurate as without but 2.5 times as slow. Augmentation pays off only over many epochs and
  costs a fifth to a third more per epoch on 2 CPU cores.
- ``accurate``: three blocks of two batch-normalised convolutions, global average pooling,
  mild augmentation, AdamW with a warmed-up cosine schedule, label smoothing, early stopping.
  Its augmentation is chosen to be safe for any kind of image: small rotations, zooms and
  shifts change no class, but a mirror image turns a 2 or a "b" into something else and
  swaps left and right in a scan, so there are no flips; brightness and contrast stay
  untouched because in scans and X-rays the grey level itself carries meaning.
- ``transfer``: MobileNetV3Small pretrained on ImageNet (the backbone cheapest on a CPU),
  the head first with the backbone frozen, then its top layers fine-tuned at a tenth of the
  rate; photo augmentation (horizontal flips, colour). Set ``flip`` to none for text or digits.
"""

from __future__ import annotations

from typing import Any

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.params.fields import HYPER_FIELDS
from cnn_tui.core.params.files import HyperParams

# Fields a preset changes from the defaults; the rest are written out at their defaults.
_FAST: dict[str, Any] = {
    "architecture": "cnn", "kernel_size": 3, "num_filters": 16, "blocks": 2, "convs_per_block": 1,
    "batch_norm": False, "pooling": "max", "head": "flatten", "dense_layers": 1, "num_units": 128, "drop_out": 0.3,
    "optimizer": "adam", "init_rate": 0.002, "schedule": "cosine", "epochs": 10, "batch_size": 32,
}
_ACCURATE: dict[str, Any] = {
    "architecture": "cnn", "kernel_size": 3, "num_filters": 32, "blocks": 3, "convs_per_block": 2,
    "batch_norm": True, "pooling": "max", "head": "gap", "dense_layers": 0, "num_units": 128, "drop_out": 0.3,
    "rotation": 0.04, "zoom": 0.1, "translation": 0.1,
    "optimizer": "adamw", "init_rate": 0.003, "weight_decay": 0.005, "schedule": "cosine", "warmup_epochs": 2,
    "epochs": 30, "batch_size": 64, "patience": 10, "label_smoothing": 0.1,
}
_TRANSFER: dict[str, Any] = {
    # 34 layers: MobileNetV3Small's last two inverted-residual blocks and its final 1x1 convolution
    "architecture": "mobilenet_v3_small", "weights": "imagenet", "freeze_epochs": 3, "unfreeze_layers": 34,
    "fine_tune_rate": 0.1, "drop_out": 0.2,
    "flip": "horizontal", "rotation": 0.03, "zoom": 0.1, "translation": 0.1, "contrast": 0.1, "brightness": 0.1,
    "optimizer": "adam", "init_rate": 0.001, "schedule": "cosine", "epochs": 12, "batch_size": 32, "patience": 4,
    "label_smoothing": 0.1,
}

# name -> (one-line description, the fields it changes; None: the seed's defaults as they are)
_PRESETS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "seed": ("the original CNN App's defaults: its two-convolution CNN with SGD, lists to tune", None),
    "fast": ("a small CNN (2 convolutions, Adam + cosine, 10 epochs): under a minute for a few thousand 28x28 "
             "images on 2 CPU cores, more accurate than seed", _FAST),
    "accurate": ("the best from-scratch CNN for 28-64 px images (3 batch-norm blocks, augmentation without flips, "
                 "AdamW + cosine, early stopping): about 10 minutes for a few thousand images on 2 CPU cores",
                 _ACCURATE),
    "transfer": ("for photos: MobileNetV3Small pretrained on ImageNet, head first then fine-tuned, with flips and "
                 "colour augmentation (downloads its weights once)", _TRANSFER),
}


def preset_names() -> tuple[str, ...]:
    return tuple(_PRESETS)


def describe(name: str) -> str:
    """The preset's one-line description."""
    return _entry(name)[0]


def preset(name: str) -> HyperParams:
    """The preset as hyper params holding every field, validated like a file."""
    return HyperParams.from_dict(preset_values(name))


def preset_values(name: str) -> dict[str, Any]:
    """The preset as the JSON object its file holds, fields in the table's order."""
    changes = _entry(name)[1]
    if changes is None:  # the seed's own defaults, lists and all
        return {spec.name: list(spec.default) if isinstance(spec.default, list) else spec.default
                for spec in HYPER_FIELDS}
    return {spec.name: changes.get(spec.name, spec.scalar_default) for spec in HYPER_FIELDS}


def _entry(name: str) -> tuple[str, dict[str, Any] | None]:
    try:
        return _PRESETS[name]
    except KeyError:
        raise ParamsError(f"unknown preset {name!r}; the presets are {', '.join(_PRESETS)}") from None
