"""Presets: each is a complete, valid hyper-params file that fits the image sizes it is for and trains."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params import presets
from cnn_tui.core.params.fields import HYPER_NAMES
from cnn_tui.core.params.files import DataParams, HyperParams, check_fits
from cnn_tui.core.training.fit import train

from tests_support import class_ordered_set

NAMES = presets.preset_names()


def test_the_presets_the_issue_asks_for_each_with_a_one_line_description():
    assert {"seed", "fast", "accurate", "transfer"} <= set(NAMES)
    for name in NAMES:
        text = presets.describe(name)
        assert text and "\n" not in text and text == text.strip()


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_is_a_complete_file_that_round_trips(tmp_path, name):
    hyper = presets.preset(name)
    assert tuple(hyper.values) == HYPER_NAMES  # every field written out, in the table's order
    assert hyper.warnings == ()
    path = hyper.save(tmp_path / f"{name}.json")
    assert json.loads(path.read_text()) == hyper.to_dict()
    loaded = HyperParams.load(path)
    assert loaded.values == hyper.values and loaded.first() == hyper.first()


def test_seed_is_the_seed_apps_defaults_lists_and_all():
    seed, defaults = presets.preset("seed"), HyperParams.defaults()
    assert seed.first() == defaults.first()
    assert seed.grid() == defaults.grid()  # the same tuning grid as a new seed file


def test_the_other_presets_train_one_configuration():
    for name in NAMES:
        if name != "seed":
            assert presets.preset(name).combination_count() == 1, name  # a preset is a run, not a search


def test_values_are_a_fresh_copy_each_time():
    presets.preset_values("seed")["num_filters"].append(99)
    assert presets.preset("seed").value("num_filters") == [32, 40]


def test_an_unknown_name_is_one_line_naming_the_presets():
    with pytest.raises(ParamsError) as caught:
        presets.preset("acurate")
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"unknown preset 'acurate'; the presets are {', '.join(NAMES)}"
    with pytest.raises(ParamsError):
        presets.describe("")


@pytest.mark.parametrize("size", [16, 28, 64])  # the demo digits' 16 px, MNIST's 28, photos at 64
@pytest.mark.parametrize("name", NAMES)
def test_each_preset_fits_the_image_sizes_it_is_for(name, size):
    data = DataParams.from_dict({"num_classes": 3, "train_dir": "t", "test_dir": "t", "image_size": size})
    check_fits(data, presets.preset(name).first())


def test_accurate_augments_without_mirroring():
    """Flips turn a 2 into a mirrored 2 and swap a scan's left and right: not safe for every data set."""
    config = presets.preset("accurate").first()
    assert config.flip == "none" and config.brightness == 0 and config.contrast == 0
    assert config.rotation and config.zoom and config.translation


def one_epoch(name: str):
    """The preset for one short epoch on tiny data; transfer without downloading weights."""
    changes = {"epochs": 1, "warmup_epochs": 0, "batch_size": 9}
    if name == "transfer":
        changes["weights"] = "none"
    return presets.preset(name).with_values(changes).first()


# MobileNetV3Small takes most of a minute to build and train on a busy 2-core machine; test_backbones
# trains it in the default run already, so the transfer preset's epoch runs with -m slow.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "transfer" else n for n in NAMES])
def test_each_preset_trains_an_epoch_and_predicts(name):
    images = class_ordered_set(classes=3, per_class=3, size=16)
    config = one_epoch(name)
    net = build_model(config, image_size=16, channels=1, class_names=images.class_names)
    result = train(net, images, config)
    assert result.status == "finished" and result.epochs_done == 1, result.message
    assert np.isfinite(result.history["loss"][0])
    probabilities = net.keras_model.predict(images.x, verbose=0)
    assert probabilities.shape == (9, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
