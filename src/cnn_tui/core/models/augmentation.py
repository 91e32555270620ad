"""Augmentation: Keras preprocessing layers at the front of the model, and the batch
augmentation of the training input (RandAugment, random erasing, MixUp, CutMix).

Keras's random layers change images only while training (``training=True``); at
inference they pass images through, so a saved model predicts the same image the
same way every time. Pixels are in [0, 1], hence the value ranges below.

The batch augmentation is not in the model at all: MixUp and CutMix need the labels, so
they (and, with them, RandAugment and erasing) run on the training batches only
(``core.data.feeding.augmented_batches``); validation, evaluation, classify and export never
see them, and a model file holds only the layers above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnn_tui.core.backend import load_keras

LAYER_FIELDS = ("flip", "rotation", "zoom", "translation", "contrast", "brightness")
BATCH_FIELDS = ("rand_augment", "rand_augment_ops", "random_erasing", "mixup", "cutmix")
AUGMENTATION_FIELDS = LAYER_FIELDS + BATCH_FIELDS


def is_augmented(config: Any) -> bool:
    return config.flip != "none" or any(getattr(config, name) for name in LAYER_FIELDS[1:]) or is_batch_augmented(config)


def is_batch_augmented(config: Any) -> bool:
    """Whether the training batches are augmented before the model sees them."""
    return bool(config.rand_augment or config.random_erasing or mixes_labels(config))


def mixes_labels(config: Any) -> bool:
    """MixUp or CutMix: training labels become mixtures (one-hot rows blended), never class indices."""
    return bool(config.mixup or config.cutmix)


@dataclass(frozen=True)
class BatchAugmentation:
    """The layers of a configuration's batch augmentation: ``image_layers`` change each image on its
    own (in order), then one of ``mixers`` (chosen at random per batch when there are two) mixes
    pairs of images and their one-hot labels."""

    image_layers: tuple[Any, ...]
    mixers: tuple[Any, ...]


def batch_augmentation(config: Any, *, seed: int | None = None) -> BatchAugmentation | None:
    """The Keras layers for ``rand_augment``, ``random_erasing``, ``mixup`` and ``cutmix``, or None."""
    if not is_batch_augmented(config):
        return None
    layers = load_keras().layers
    image_layers: list[Any] = []
    if config.rand_augment:
        image_layers.append(layers.RandAugment(value_range=(0, 1), num_ops=config.rand_augment_ops,
                                               factor=config.rand_augment, seed=seed, name="augment_rand_augment"))
    if config.random_erasing:
        # a pair: Keras draws the probability from (low, high); a single number would mean "up to" it
        image_layers.append(layers.RandomErasing(factor=(config.random_erasing, config.random_erasing),
                                                 value_range=(0, 1), seed=seed, name="augment_random_erasing"))
    mixers: list[Any] = []
    if config.mixup:
        mixers.append(layers.MixUp(alpha=config.mixup, seed=seed, name="augment_mixup"))
    if config.cutmix:
        # CutMix's factor bounds the alpha it draws from; a pair pins it to the field's value
        mixers.append(layers.CutMix(factor=(config.cutmix, config.cutmix), seed=seed, name="augment_cutmix"))
    return BatchAugmentation(tuple(image_layers), tuple(mixers))


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
    batch augmentation's image layers (RandAugment, erasing), then the model's augmentation layers,
    applied with ``training=True`` (mixing needs a second image: ``mixed_samples``); the same seed
    gives the same copies. Without augmentation every copy is the image itself. Returns float32
    (count, h, w, c)."""
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)

    batch = np.repeat(np.asarray(image, dtype=np.float32)[None], count, axis=0)
    if not is_augmented(config):
        return batch
    keras = load_keras()
    out = batch
    batch_layers = batch_augmentation(config, seed=seed)
    for layer in (*(batch_layers.image_layers if batch_layers else ()), *augmentation_layers(config, seed=seed)):
        out = layer(out, training=True)
    return np.clip(keras.ops.convert_to_numpy(out), 0.0, 1.0).astype(np.float32)


def mixed_samples(image: Any, partner: Any, config: Any, count: int = 8, seed: int = 0) -> tuple[Any, Any]:
    """``count`` mixtures of ``image`` with ``partner`` (both h, w, c floats in [0, 1]) as training
    may make them: each image through the batch augmentation's image layers, then MixUp or CutMix
    (with both, the first half of the copies MixUp, the rest CutMix), then the model's augmentation
    layers. Returns (float32 (count, h, w, c), float32 (count,): the share of ``image`` in each
    mixed label). Without mixing, ``augmented_samples`` and shares of 1."""
    import numpy as np  # noqa: PLC0415 — numpy is not loaded before a task needs it (the first frame, --help)

    layers = batch_augmentation(config, seed=seed)
    if layers is None or not layers.mixers:
        return augmented_samples(image, config, count, seed), np.ones(count, np.float32)
    keras = load_keras()
    ops = keras.ops
    images = np.concatenate([np.repeat(np.asarray(picture, np.float32)[None], count, axis=0)
                             for picture in (image, partner)])
    for layer in layers.image_layers:
        images = layer(images, training=True)
    labels = np.repeat(np.eye(2, dtype=np.float32), count, axis=0)  # [1, 0]: image, [0, 1]: partner
    # each copy of the image is mixed with a copy of the partner (a random pairing could pair it with itself)
    pairing = np.concatenate([np.arange(count, 2 * count), np.arange(count)])
    parts = np.array_split(np.arange(count), len(layers.mixers))
    out_images, out_shares = [], []
    for mixer, rows in zip(layers.mixers, parts):
        data = {"images": images, "labels": labels}
        transformation = mixer.get_random_transformation(data, training=True)
        transformation["permutation_order"] = ops.convert_to_tensor(pairing.astype("int32"))
        mixed = mixer.transform_images(images, transformation, training=True)
        shares = mixer.transform_labels(labels, transformation, training=True)
        out_images.append(ops.convert_to_numpy(ops.take(mixed, rows, axis=0)))
        out_shares.append(ops.convert_to_numpy(shares)[rows, 0])
    out = np.concatenate(out_images)
    for layer in augmentation_layers(config, seed=seed):
        out = layer(out, training=True)
    return (np.clip(ops.convert_to_numpy(out), 0.0, 1.0).astype(np.float32),
            np.concatenate(out_shares).astype(np.float32))
