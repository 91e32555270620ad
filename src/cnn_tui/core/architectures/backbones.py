"""Pretrained backbones from ``keras.applications`` with a new classification head.

The input is converted as each backbone needs: grayscale repeated to 3 channels,
images smaller than the backbone's minimum resized up, and pixels (cnn-tui scales
them to [0, 1]) mapped to the range the backbone was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ParamsError


@dataclass(frozen=True)
class Backbone:
    name: str
    application: str  # the keras.applications constructor
    min_size: int
    scale: float  # [0, 1] pixels times scale plus offset: the range the backbone expects
    offset: float
    preprocessing_flag: bool  # the constructor takes include_preprocessing


BACKBONES = (
    # MobileNetV3 and EfficientNetV2 rescale inside (include_preprocessing): they expect 0-255.
    Backbone("mobilenet_v3_small", "MobileNetV3Small", 32, 255.0, 0.0, True),
    Backbone("efficientnet_v2_b0", "EfficientNetV2B0", 32, 255.0, 0.0, True),
    # ResNet50V2's preprocess_input maps 0-255 to [-1, 1]
    Backbone("resnet50_v2", "ResNet50V2", 32, 2.0, -1.0, False),
)
_BY_NAME = {b.name: b for b in BACKBONES}


def input_size(backbone: Backbone, image_size: int) -> int:
    return max(image_size, backbone.min_size)


def build(config: Any, *, image_size: int, channels: int, classes: int, front: list[Any]) -> Any:
    keras = load_keras()
    layers = keras.layers
    backbone = _BY_NAME[config.architecture]
    inputs = keras.Input(shape=(image_size, image_size, channels))
    x = inputs
    for layer in front:
        x = layer(x)
    if channels == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    size = input_size(backbone, image_size)
    if size != image_size:
        x = layers.Resizing(size, size, name="resize")(x)
    x = layers.Rescaling(backbone.scale, offset=backbone.offset, name="backbone_range")(x)
    options: dict[str, Any] = dict(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    if backbone.preprocessing_flag:
        options["include_preprocessing"] = True
    base = getattr(keras.applications, backbone.application)(**options)
    base.name = "backbone"
    x = base(x)
    x = layers.Dropout(config.drop_out, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=backbone.name)


def check(config: Any, image_size: int) -> None:
    if image_size < 8:
        raise ParamsError(f"image_size {image_size} is too small for a pretrained backbone; use at least 8")


def title(config: Any) -> str:
    return f"{_BY_NAME[config.architecture].application} backbone (weights: {config.weights}) + new head"


ARCHITECTURES = tuple(dict(name=b.name, build=build, check=check, title=title, pretrained=True) for b in BACKBONES)
