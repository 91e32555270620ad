"""augmented_samples: one image drawn the ways training may see it (the TUI's augmentation preview)."""

from __future__ import annotations

import numpy as np

from cnn_tui.core.models.augmentation import augmented_samples
from cnn_tui.core.params.files import ModelConfig


def bar_image(size: int = 16, channels: int = 1) -> np.ndarray:
    image = np.zeros((size, size, channels), np.float32)
    image[3:13, 7:9] = 1.0  # an upright bar: rotation moves it
    return image


def test_no_augmentation_gives_the_image_itself_eight_times():
    image = bar_image()
    samples = augmented_samples(image, ModelConfig())
    assert samples.shape == (8, 16, 16, 1) and samples.dtype == np.float32
    assert all(np.array_equal(sample, image) for sample in samples)


def test_rotation_gives_eight_different_images_the_same_for_the_same_seed():
    image = bar_image(channels=3)
    config = ModelConfig(rotation=0.1)
    samples = augmented_samples(image, config, count=8, seed=0)
    assert samples.shape == (8, 16, 16, 3)
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    assert len({sample.tobytes() for sample in samples}) == 8  # each copy turned its own way
    assert np.array_equal(samples, augmented_samples(image, config, count=8, seed=0))  # a fixed seed: a still preview
    wider = augmented_samples(image, ModelConfig(rotation=0.3), count=8, seed=0)
    assert not np.allclose(samples, wider)  # a change of the field changes the preview
    assert augmented_samples(image, config, count=3).shape[0] == 3


def test_colour_and_geometry_layers_together_stay_in_range():
    config = ModelConfig(flip="horizontal", zoom=0.2, translation=0.1, contrast=0.5, brightness=0.5)
    samples = augmented_samples(bar_image(), config, seed=3)
    assert samples.shape == (8, 16, 16, 1)
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    assert not np.allclose(samples[0], bar_image())
