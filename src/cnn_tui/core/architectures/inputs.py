"""The start every functional architecture shares: the image input and the front layers
(augmentation) applied to it."""

from __future__ import annotations

from typing import Any


def input_and_front(keras: Any, image_size: int, channels: int, front: list[Any]) -> tuple[Any, Any]:
    """(the model's input, the tensor after the front layers)."""
    inputs = keras.Input(shape=(image_size, image_size, channels))
    x = inputs
    for layer in front:
        x = layer(x)
    return inputs, x
