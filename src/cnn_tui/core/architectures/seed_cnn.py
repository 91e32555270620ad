"""The seed app's network, exactly: two same-padded 3x3 (``kernel_size``) convolutions each
followed by 2x2 max pooling, a flatten, one dense layer, dropout and a softmax
(818,026 weights for 28x28x1 images, 32 filters, 512 units, 10 classes)."""

from __future__ import annotations

from typing import Any

from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ParamsError


def build(config: Any, *, image_size: int, channels: int, classes: int, front: list[Any]) -> Any:
    keras = load_keras()
    layers = keras.layers
    conv = dict(kernel_size=config.kernel_size, padding="same", activation="relu", kernel_initializer="he_uniform")
    # The seed's layer names, so summaries and saved models read as they always did.
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, channels)),
            *front,
            layers.Conv2D(config.num_filters, name="conv2d", **conv),
            layers.MaxPooling2D((2, 2), name="max_pooling2d"),
            layers.Conv2D(config.num_filters, name="conv2d_1", **conv),
            layers.MaxPooling2D((2, 2), name="max_pooling2d_1"),
            layers.Flatten(name="flatten"),
            layers.Dense(config.num_units, activation="relu", kernel_initializer="he_uniform", name="dense"),
            layers.Dropout(config.drop_out, name="dropout"),
            layers.Dense(classes, activation="softmax", name="dense_1", dtype="float32"),
        ],
        name="sequential",
    )


def check(config: Any, image_size: int) -> None:
    pooled = image_size // 2  # the second convolution sees the image after one 2x2 pooling
    if pooled // 2 < 1:
        raise ParamsError(f"image_size {image_size} is too small for two 2x2 poolings; use at least 4")
    if config.kernel_size > pooled:
        raise ParamsError(
            f"kernel_size {config.kernel_size} is larger than the {pooled}x{pooled} image the second "
            f"convolution sees (image_size {image_size} after 2x2 pooling); use at most {pooled}"
        )


def weights(config: Any, *, image_size: int, channels: int, classes: int) -> dict[str, int]:
    k, f, units = config.kernel_size, config.num_filters, config.num_units
    flat = (image_size // 2 // 2) ** 2 * f
    return {"conv2d": k * k * channels * f + f, "conv2d_1": k * k * f * f + f, "dense": flat * units + units,
            "dense_1": units * classes + classes}


def title(config: Any) -> str:
    return f"seed CNN: 2 convolutions x {config.num_filters} filters, dense {config.num_units}"


ARCHITECTURES = (dict(name="seed_cnn", build=build, check=check, title=title, weights=weights),)
