"""Augmentation as Keras preprocessing layers at the front of the model.

Keras's random layers change images only while training (``training=True``); at
inference they pass images through, so a saved model predicts the same image the
same way every time. Pixels are in [0, 1], hence the value ranges below.
"""

from __future__ import annotations

from typing import Any

from cnn_tui.core.backend import load_keras

AUGMENTATION_FIELDS = ("flip", "rotation", "zoom", "translation", "contrast", "brightness")


def is_augmented(config: Any) -> bool:
    return config.flip != "none" or any(getattr(config, name) for name in AUGMENTATION_FIELDS[1:])


def augmentation_layers(config: Any, *, seed: int | None = None) -> list[Any]:
    """The layers for a configuration, in a fixed order (geometry first, then colour)."""
    layers = load_keras().layers
    out: list[Any] = []
    if config.flip != "none":
        out.append(layers.RandomFlip(config.flip, seed=seed, name="augment_flip"))
    if config.rotation:
        out.append(layers.RandomRotation(config.rotation, fill_mode="constant", seed=seed, name="augment_rotation"))
    if config.zoom:
        out.append(layers.RandomZoom(config.zoom, fill_mode="constant", seed=seed, name="augment_zoom"))
    if config.translation:
        out.append(layers.RandomTranslation(config.translation, config.translation, fill_mode="constant", seed=seed,
                                            name="augment_translation"))
    if config.contrast:
        out.append(layers.RandomContrast(config.contrast, value_range=(0, 1), seed=seed, name="augment_contrast"))
    if config.brightness:
        out.append(layers.RandomBrightness(config.brightness, value_range=(0, 1), seed=seed,
                                           name="augment_brightness"))
    return out


def augmented_samples(image: Any, config: Any, count: int = 8, seed: int = 0) -> Any:
    """``count`` copies of one image (h, w, c floats in [0, 1]) as training would see them: the
    configuration's augmentation layers applied with ``training=True``; the same seed gives the same
    copies. Without augmentation every copy is the image itself. Returns float32 (count, h, w, c)."""
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)

    batch = np.repeat(np.asarray(image, dtype=np.float32)[None], count, axis=0)
    if not is_augmented(config):
        return batch
    keras = load_keras()
    out = batch
    for layer in augmentation_layers(config, seed=seed):
        out = layer(out, training=True)
    return np.clip(keras.ops.convert_to_numpy(out), 0.0, 1.0).astype(np.float32)
