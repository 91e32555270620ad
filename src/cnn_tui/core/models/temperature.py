"""A model's temperature, applied: probabilities = softmax(log p / T) ∝ p^(1/T).

cnn-tui's networks end in a softmax, so log p are their logits up to a constant per image (which
softmax ignores). T = 1 leaves every probability as it is; the argmax never changes. Fitting T is
``core.training.calibration``'s; this module only applies it, to numpy arrays (``scaled``) and, for
an export, as a last layer of the exported graph (``with_temperature``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnn_tui.core.backend import load_keras

TINY = 1e-12  # log 0 guard: a float32 softmax can round a probability to 0


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), rows summing to 1; T = 1 gives ``probabilities`` back unchanged."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), TINY, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)  # the last axis: also (views, images, classes)
    out = np.exp(logits)
    out /= out.sum(axis=-1, keepdims=True)
    return out.astype(np.asarray(probabilities).dtype)


def with_temperature(model: Any, temperature: float) -> Any:
    """``model`` followed by softmax(log p / T), as one functional model (for an export: it is traced,
    never saved as .keras, so the small layer class needs no registration); ``model`` itself when T = 1."""
    if temperature == 1.0:
        return model
    keras = load_keras()

    class TemperatureSoftmax(keras.layers.Layer):
        def call(self, probabilities: Any) -> Any:
            ops = keras.ops
            logits = ops.log(ops.clip(ops.cast(probabilities, "float32"), TINY, 1.0)) / temperature
            return ops.softmax(logits, axis=-1)

    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name="image")
    return keras.Model(inputs, TemperatureSoftmax(name="temperature")(model(inputs)), name=f"{model.name}_calibrated")
