"""A configurable CNN: ``blocks`` blocks of ``convs_per_block`` convolutions (each with
optional batch norm), each block ending in 2x2 pooling, filters doubling per block from
``num_filters``; then global average pooling (or a flatten), ``dense_layers`` dense
layers of ``num_units`` with dropout, and a softmax."""

from __future__ import annotations

from typing import Any

from cnn_tui.core.architectures.inputs import input_and_front
from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ParamsError


def build(config: Any, *, image_size: int, channels: int, classes: int, front: list[Any]) -> Any:
    keras = load_keras()
    layers = keras.layers
    inputs, x = input_and_front(keras, image_size, channels, front)
    pool = layers.MaxPooling2D if config.pooling == "max" else layers.AveragePooling2D
    for block in range(config.blocks):
        filters = config.num_filters * 2**block
        for conv in range(config.convs_per_block):
            name = f"block{block + 1}_conv{conv + 1}"
            # with batch norm after it, a convolution's bias is redundant
            x = layers.Conv2D(filters, config.kernel_size, padding="same", use_bias=not config.batch_norm,
                              kernel_initializer="he_uniform", name=name)(x)
            if config.batch_norm:
                # momentum 0.9, not Keras's 0.99: on a few thousand images the running statistics
                # inference uses must settle within a few hundred steps
                x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
            x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = pool((2, 2), name=f"block{block + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x) if config.head == "gap" else layers.Flatten(name="flatten")(x)
    for i in range(config.dense_layers):
        x = layers.Dropout(config.drop_out, name=f"dropout{i + 1}")(x)
        x = layers.Dense(config.num_units, activation="relu", kernel_initializer="he_uniform", name=f"dense{i + 1}")(x)
    x = layers.Dropout(config.drop_out, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


def check(config: Any, image_size: int) -> None:
    smallest = image_size // 2 ** (config.blocks - 1)  # what the last block's convolutions see
    if image_size // 2**config.blocks < 1:
        most = max(1, image_size.bit_length() - 1)
        raise ParamsError(f"blocks {config.blocks} is too many for image_size {image_size}: each block halves "
                          f"the image; use at most {most}")
    if config.kernel_size > smallest:
        raise ParamsError(f"kernel_size {config.kernel_size} is larger than the {smallest}x{smallest} image the last "
                          f"block sees (image_size {image_size}, {config.blocks} blocks); use at most {smallest}")


def weights(config: Any, *, image_size: int, channels: int, classes: int) -> dict[str, int]:
    k, out = config.kernel_size, {}
    previous = channels
    for block in range(config.blocks):
        filters = config.num_filters * 2**block
        for conv in range(config.convs_per_block):
            out[f"block{block + 1}_conv{conv + 1}"] = k * k * previous * filters + filters
            previous = filters
    flat = previous if config.head == "gap" else (image_size // 2**config.blocks) ** 2 * previous
    for i in range(config.dense_layers):
        out[f"dense{i + 1}"] = flat * config.num_units + config.num_units
        flat = config.num_units
    out["predictions"] = flat * classes + classes
    return out


def title(config: Any) -> str:
    widths = "-".join(str(config.num_filters * 2**b) for b in range(config.blocks))
    return (f"CNN: {config.blocks} blocks x {config.convs_per_block} convolutions ({widths} filters"
            f"{', batch norm' if config.batch_norm else ''}), {config.head} head")


ARCHITECTURES = (dict(name="cnn", build=build, check=check, title=title, weights=weights),)
