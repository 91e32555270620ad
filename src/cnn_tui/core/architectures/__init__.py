"""The networks cnn-tui builds, one module each, registered here in one place.

An architecture knows how to build its network (from the input through to the
softmax), whether it fits an image size (a one-line ``ParamsError`` when not), the
title of its summary and, when it can tell before building, its weights per layer
(for the memory check). Modules import Keras only inside their functions, and
read the hyper params by attribute (``config.num_filters``), so this package
does not import ``core.params.files``.

Adding an architecture: write its module with an ``ARCHITECTURES`` tuple, add the
module to ``_MODULES`` below, and give its own fields rows in ``fields.HYPER_FIELDS``
(``shown_if=("architecture", (...))``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnn_tui.core.architectures import backbones, cnn, resnet, seed_cnn
from cnn_tui.core.architectures.phases import Phase

# Builds the uncompiled network. ``front`` are layers to apply to the input first (augmentation).
Build = Callable[..., Any]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Build  # build(config, *, image_size, channels, classes, front) -> keras.Model
    check: Callable[[Any, int], None]  # check(config, image_size): raise ParamsError when it cannot fit
    title: Callable[[Any], str]  # the summary's title for a configuration
    weights: Callable[..., dict[str, int]] | None = None  # weights(config, *, image_size, channels, classes)
    pretrained: bool = False  # a keras.applications backbone (fine-tuning, weights files)
    # phases(keras_model, config) -> [Phase]: training in stages, each with its trainable layers and
    # a fresh optimizer; None is one plain stage.
    phases: Callable[[Any, Any], list[Phase]] | None = None


_MODULES = (seed_cnn, cnn, resnet, backbones)

REGISTRY: dict[str, Architecture] = {
    spec["name"]: Architecture(**spec) for module in _MODULES for spec in module.ARCHITECTURES
}
ARCHITECTURE_NAMES: tuple[str, ...] = tuple(REGISTRY)
BACKBONE_NAMES: tuple[str, ...] = tuple(name for name, arch in REGISTRY.items() if arch.pretrained)
# The fields that decide whether a network fits an image size: a tuning grid checks each combination.
SHAPE_FIELDS = ("architecture", "kernel_size", "blocks", "weights")


def architecture(name: str) -> Architecture:
    return REGISTRY[name]
