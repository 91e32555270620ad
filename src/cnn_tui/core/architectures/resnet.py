"""A small residual network for 28-96 px images: a 3x3 stem of ``num_filters``, then
``blocks`` stages of two residual units (3x3 convolutions with batch norm; an average
pool and 1x1 projection on the shortcut when the shape changes), each stage after the first halving
the image and doubling the filters; global average pooling, dropout and a softmax."""

from __future__ import annotations

from typing import Any

from cnn_tui.core.architectures.inputs import input_and_front
from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ParamsError

UNITS_PER_STAGE = 2


def build(config: Any, *, image_size: int, channels: int, classes: int, front: list[Any]) -> Any:
    keras = load_keras()
    layers = keras.layers
    inputs, x = input_and_front(keras, image_size, channels, front)
    k = config.kernel_size

    def conv_bn(x: Any, filters: int, strides: int, name: str, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, k, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)  # settles on small sets (cnn.py)
        return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x

    x = conv_bn(x, config.num_filters, 1, "stem")
    for stage in range(config.blocks):
        filters = config.num_filters * 2**stage
        for unit in range(UNITS_PER_STAGE):
            name = f"stage{stage + 1}_unit{unit + 1}"
            strides = 2 if stage > 0 and unit == 0 else 1
            shortcut = x
            y = conv_bn(x, filters, strides, f"{name}_a")
            y = conv_bn(y, filters, 1, f"{name}_b", relu=False)
            if strides != 1:
                # average-pool then 1x1 (ResNet-D's shortcut): it keeps every pixel's information, and a
                # strided 1x1 convolution corrupts memory in TensorFlow 2.21's oneDNN CPU kernels
                shortcut = layers.AveragePooling2D(2, padding="same", name=f"{name}_pool")(shortcut)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
                shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
            x = layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(config.drop_out, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="resnet")


def _final_size(image_size: int, blocks: int) -> int:
    size = image_size
    for _ in range(blocks - 1):
        size = (size + 1) // 2  # a stride-2 same-padded convolution rounds up
    return size


def check(config: Any, image_size: int) -> None:
    if image_size // 2 ** (config.blocks - 1) < 2:
        raise ParamsError(f"blocks {config.blocks} is too many for image_size {image_size}: each stage after the "
                          f"first halves the image; use at most {max(1, image_size.bit_length() - 1)}")
    smallest = _final_size(image_size, config.blocks)
    if config.kernel_size > smallest:
        raise ParamsError(f"kernel_size {config.kernel_size} is larger than the {smallest}x{smallest} image the last "
                          f"stage sees (image_size {image_size}, {config.blocks} blocks); use at most {smallest}")


def weights(config: Any, *, image_size: int, channels: int, classes: int) -> dict[str, int]:
    k, f = config.kernel_size, config.num_filters
    out = {"stem": k * k * channels * f}
    previous = f
    for stage in range(config.blocks):
        filters = f * 2**stage
        out[f"stage{stage + 1}"] = UNITS_PER_STAGE * 2 * k * k * filters * filters + previous * filters
        previous = filters
    out["predictions"] = previous * classes + classes
    return out


def title(config: Any) -> str:
    widths = "-".join(str(config.num_filters * 2**b) for b in range(config.blocks))
    return f"ResNet: {config.blocks} stages x {UNITS_PER_STAGE} residual units ({widths} filters)"


ARCHITECTURES = (dict(name="resnet", build=build, check=check, title=title, weights=weights),)
