"""Pretrained keras.applications backbones: building, weights (none, imagenet offline, a file),
fine-tuning in stages, and saving/loading in safe mode.

These networks are big, so the default run trains only MobileNetV3Small on 9 images of 12 px
(resized up to 32); EfficientNetV2B0 and ResNet50V2 train in the slow run (``-m slow``)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from cnn_tui.core.architectures import BACKBONE_NAMES, backbones
from cnn_tui.core.errors import ModelError, ParamsError
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.params.files import DataParams, ModelConfig, check_fits
from cnn_tui.core.training.fit import fit_stages, train
from tests.tests_support import class_ordered_set

APPLICATIONS = {b.name: b.application for b in backbones.BACKBONES}
SLOW = {"efficientnet_v2_b0", "resnet50_v2"}
TINY = dict(epochs=1, batch_size=9, optimizer="adam", init_rate=0.01, schedule="constant")


def param_slow(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def tiny(size: int = 12):
    return class_ordered_set(classes=3, per_class=3, size=size)


def keras():
    from cnn_tui.core.backend import load_keras

    return load_keras()


def bare_backbone(name: str, size: int = 32):
    """The backbone as keras.applications builds it, to save weights files from."""
    options = dict(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    if name != "resnet50_v2":
        options["include_preprocessing"] = True
    return getattr(keras().applications, APPLICATIONS[name])(**options)


def same_weights(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and no network: a download attempt fails at once, as offline."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    attempts = []

    def refuse(url, timeout=None):
        attempts.append((url, timeout))
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


# ---------------------------------------------------------------- every backbone


@pytest.mark.parametrize("name", param_slow(BACKBONE_NAMES))
def test_each_backbone_trains_saves_loads_and_predicts_the_same(tmp_path, name):
    images = tiny()
    config = ModelConfig(architecture=name, **TINY)
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    names = [layer.name for layer in net.keras_model.layers]
    assert names[1:] == ["to_rgb", "resize", "backbone_range", "backbone", "dropout", "predictions"]
    assert net.keras_model.get_layer("backbone").input_shape == (None, 32, 32, 3)  # keras.applications' minimum
    result = train(net, images, config)
    assert result.status == "finished" and result.epochs_done == 1 and np.isfinite(result.history["loss"][0])
    before = net.keras_model.predict(images.x, verbose=0)
    net.save(tmp_path / "m.keras")  # the safe-mode archive check on load refuses anything outside keras.*
    back = NetModel.load(tmp_path / "m.keras")
    assert back.config == config and back.title == net.title == f"{APPLICATIONS[name]} backbone (weights: none) + new head"
    assert np.allclose(back.keras_model.predict(images.x, verbose=0), before, atol=1e-6)


@pytest.mark.parametrize("name", param_slow(BACKBONE_NAMES))
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square")  # MobileNetV3 at 32 px
def test_the_imagenet_file_is_the_one_keras_applications_asks_for(monkeypatch, name):
    """Our table of file names, addresses and hashes must match the installed Keras's."""
    from keras.src.utils import file_utils

    asked = {}

    def capture(fname, origin, **kwargs):
        asked.update(fname=fname, origin=origin, **kwargs)
        raise RuntimeError("captured")

    monkeypatch.setattr(file_utils, "get_file", capture)
    options = {} if name == "resnet50_v2" else {"include_preprocessing": True}
    with pytest.raises(RuntimeError, match="captured"):
        getattr(keras().applications, APPLICATIONS[name])(include_top=False, weights="imagenet",
                                                          input_shape=(32, 32, 3), pooling="avg", **options)
    backbone = backbones._BY_NAME[name]
    assert (asked["fname"], asked["origin"], asked["file_hash"]) == (
        backbone.weights_file, backbone.weights_url, backbone.weights_md5)
    assert asked["cache_subdir"] == "models"


# ---------------------------------------------------------------- input size and range


def test_inputs_are_resized_up_to_the_minimum_and_further_for_pretrained_weights():
    mobile = backbones._BY_NAME["mobilenet_v3_small"]
    assert backbones.input_size(mobile, 12, "none") == 32
    assert backbones.input_size(mobile, 48, "none") == 48
    assert backbones.input_size(mobile, 28, "imagenet") == backbones.PRETRAINED_MIN_SIZE == 96
    assert backbones.input_size(mobile, 28, "my.weights.h5") == 96
    assert backbones.input_size(mobile, 160, "imagenet") == 160


def test_pixels_reach_each_backbone_in_the_range_it_was_trained_on():
    # MobileNetV3 and EfficientNetV2 keep their own preprocessing, which expects 0-255;
    # ResNet50V2's preprocess_input expects [-1, 1]
    ranges = {b.name: (0 * b.scale + b.offset, 1 * b.scale + b.offset) for b in backbones.BACKBONES}
    assert ranges == {"mobilenet_v3_small": (0, 255), "efficientnet_v2_b0": (0, 255), "resnet50_v2": (-1, 1)}


def test_colour_images_go_straight_in_without_the_grayscale_copy():
    net = build_model(ModelConfig(architecture="mobilenet_v3_small"), image_size=40, channels=3,
                      class_names=["a", "b"])
    names = [layer.name for layer in net.keras_model.layers]
    assert "to_rgb" not in names and "resize" not in names  # 40 px is above the minimum
    assert net.keras_model.get_layer("backbone").input_shape == (None, 40, 40, 3)


# ---------------------------------------------------------------- weights


def test_imagenet_offline_is_one_line_naming_the_file_to_place_and_its_address(offline, tmp_path):
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        build_model(ModelConfig(architecture="mobilenet_v3_small", weights="imagenet"), image_size=28, channels=1,
                    class_names=["a", "b"])
    message = str(caught.value)
    target = tmp_path / "keras_home" / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    assert "\n" not in message and message.startswith(f"{target}: no ImageNet weights for MobileNetV3Small")
    assert "Temporary failure in name resolution" in message
    assert ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
            "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5") in message
    assert offline and offline[0][1] == backbones.DOWNLOAD_TIMEOUT  # never the OS's minutes-long default
    assert not list(target.parent.iterdir())  # no partial download left behind
    assert time.perf_counter() - started < 30  # the build itself, no network wait


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_each_backbones_offline_error_names_keras_file(offline, tmp_path, name):
    with pytest.raises(ModelError) as caught:
        backbones.imagenet_file(backbones._BY_NAME[name])
    assert backbones._BY_NAME[name].weights_file in str(caught.value).split(":")[0]


def test_a_damaged_download_is_not_kept(monkeypatch, tmp_path):
    import io

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"not the weights"))
    with pytest.raises(ModelError, match="damaged: its md5 differs"):
        backbones.imagenet_file(backbones._BY_NAME["mobilenet_v3_small"])
    assert not list((tmp_path / "models").iterdir())


def test_imagenet_weights_already_in_the_keras_cache_load_without_the_network(offline, tmp_path):
    """The keras.applications notop .h5 format (weights by layer order), placed by hand as offline users do."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    source = bare_backbone("mobilenet_v3_small")
    cached = tmp_path / "keras_home" / "models" / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    cached.parent.mkdir(parents=True)
    with h5py.File(cached, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    net = build_model(ModelConfig(architecture="mobilenet_v3_small", weights="imagenet"), image_size=28, channels=1,
                      class_names=["a", "b"])
    base = net.keras_model.get_layer("backbone")
    assert same_weights(base, source) and not offline
    assert base.input_shape == (None, 96, 96, 3)  # pretrained: resized up to 96


def test_a_weights_file_saved_by_keras_is_loaded_from_a_path_relative_to_the_working_folder(tmp_path, monkeypatch):
    source = bare_backbone("mobilenet_v3_small")
    (tmp_path / "weights").mkdir()
    source.save_weights(tmp_path / "weights" / "mobile.weights.h5")
    monkeypatch.chdir(tmp_path)
    config = ModelConfig(architecture="mobilenet_v3_small", weights="weights/mobile.weights.h5")
    check_fits(DataParams(num_classes=2, train_dir="t", test_dir="t", image_size=12), config)
    net = build_model(config, image_size=12, channels=1, class_names=["a", "b"])
    assert same_weights(net.keras_model.get_layer("backbone"), source)
    monkeypatch.setenv("HOME", str(tmp_path))  # and ~ is the home folder
    net = build_model(config.replace(weights="~/weights/mobile.weights.h5"), image_size=12, channels=1,
                      class_names=["a", "b"])
    assert same_weights(net.keras_model.get_layer("backbone"), source)


@pytest.mark.parametrize(("weights", "message"), [
    ("missing.weights.h5", "missing.weights.h5: weights file not found (a relative path is taken from the working"),
    ("model.keras", "model.keras: weights must be none, imagenet or a .h5 weights file"),
    ("  ", "weights is empty; use none, imagenet or the path of a .h5 weights file"),
])
def test_a_bad_weights_value_is_refused_when_the_params_are_checked(tmp_path, monkeypatch, weights, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.keras").write_text("x")
    data = DataParams(num_classes=2, train_dir="t", test_dir="t", image_size=28)
    with pytest.raises(ParamsError) as caught:
        check_fits(data, ModelConfig(architecture="mobilenet_v3_small", weights=weights))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_keywords_are_read_in_any_case():
    assert [backbones.weights_kind(w) for w in ("None", " IMAGENET ", "imagenet.h5")] == ["none", "imagenet", "file"]


def test_a_weights_file_of_another_network_or_damaged_is_one_line_naming_it(tmp_path):
    layers = keras().layers
    other = keras().Sequential([keras().Input((4,)), layers.Dense(3, name="dense")])
    other.save_weights(tmp_path / "other.weights.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    for name in ("other.weights.h5", "junk.h5"):
        with pytest.raises(ModelError) as caught:
            build_model(ModelConfig(architecture="mobilenet_v3_small", weights=str(tmp_path / name)), image_size=12,
                        channels=1, class_names=["a", "b"])
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: cannot load these weights into MobileNetV3Small: not its weights")
        assert "\n" not in message


def test_image_size_below_eight_is_refused():
    with pytest.raises(ParamsError, match="image_size 6 is too small for a pretrained backbone; use at least 8"):
        check_fits(DataParams(num_classes=2, train_dir="t", test_dir="t", image_size=6),
                   ModelConfig(architecture="resnet50_v2"))


# ---------------------------------------------------------------- fine-tuning


def _plan(**hyper):
    """fit_stages for a stand-in model: the stages depend only on the hyper params."""
    stub = SimpleNamespace(keras_model=SimpleNamespace(get_layer=lambda name: None))
    config = ModelConfig(architecture="mobilenet_v3_small", **hyper)

    def stages(initial_epoch: int = 0):
        return [(first, last, prepare is not None) for first, last, prepare in fit_stages(stub, config, 4, initial_epoch)]

    return stages


def test_pretrained_weights_train_in_two_stages_and_a_resume_continues_its_stage():
    stages = _plan(weights="my.weights.h5", epochs=5, freeze_epochs=2)
    assert stages() == [(0, 2, True), (2, 5, True)]
    assert stages(1) == [(1, 2, False), (2, 5, True)]  # mid-stage: the model file kept its flags and optimizer
    assert stages(2) == [(2, 5, True)]
    assert stages(3) == [(3, 5, False)]
    assert _plan(weights="imagenet", epochs=5, freeze_epochs=0)() == [(0, 5, True)]
    assert _plan(weights="imagenet", epochs=3, freeze_epochs=5)() == [(0, 3, True)]


def test_random_weights_train_everything_from_the_start():
    assert _plan(weights="none", epochs=5, freeze_epochs=2)() == [(0, 5, True)]


def test_the_frozen_stage_trains_only_the_head_then_the_top_layers_fine_tune_with_batch_norm_frozen(tmp_path):
    source = bare_backbone("mobilenet_v3_small")
    source.save_weights(tmp_path / "mobile.weights.h5")
    images = tiny()
    config = ModelConfig(architecture="mobilenet_v3_small", weights=str(tmp_path / "mobile.weights.h5"),
                         freeze_epochs=1, unfreeze_layers=12, fine_tune_rate=0.1, **{**TINY, "epochs": 2})
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    model, base = net.keras_model, net.keras_model.get_layer("backbone")
    head = model.get_layer("predictions").get_weights()[0]
    # built as the first stage trains, so the summary counts what training starts with
    assert not base.trainable and net.totals().trainable == model.get_layer("predictions").count_params()

    result = train(net, images, config.replace(epochs=1))  # stage 1 only
    assert result.epochs_done == 1
    assert same_weights(base, source)  # frozen: kernels and batch-norm statistics alike
    assert not np.array_equal(model.get_layer("predictions").get_weights()[0], head)
    assert not base.trainable and model.optimizer.learning_rate.numpy() == pytest.approx(0.01)

    before = {layer.name: layer.get_weights() for layer in base.layers}
    result = train(net, images, config, initial_epoch=1)  # stage 2: prepared at its boundary
    assert result.status == "finished" and result.epochs_done == 2
    top = base.layers[-12:]
    changed = {layer.name for layer in base.layers
               if any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))}
    assert changed and changed <= {layer.name for layer in top}  # only the top layers moved ...
    batch_norm = [layer for layer in base.layers if isinstance(layer, keras().layers.BatchNormalization)]
    assert any(layer in top for layer in batch_norm)
    assert not any(layer.trainable for layer in batch_norm)  # ... and never batch norm, statistics included
    assert not changed & {layer.name for layer in batch_norm}
    assert {layer.name for layer in base.layers if layer.trainable and layer.weights} == {
        layer.name for layer in top if layer.weights and layer not in batch_norm}
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01 * 0.1)


@pytest.mark.slow
def test_a_run_resumed_inside_the_fine_tuning_stage_keeps_its_trainable_layers(tmp_path):
    source = bare_backbone("mobilenet_v3_small")
    source.save_weights(tmp_path / "mobile.weights.h5")
    images = tiny()
    config = ModelConfig(architecture="mobilenet_v3_small", weights=str(tmp_path / "mobile.weights.h5"),
                         freeze_epochs=1, unfreeze_layers=12, **{**TINY, "epochs": 3})
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    train(net, images, config.replace(epochs=2))
    def flags(base):  # of the layers with weights (an InputLayer's flag is not saved, and means nothing)
        return [layer.trainable for layer in base.layers if layer.weights]

    trained = flags(net.keras_model.get_layer("backbone"))
    net.epochs_done = 2
    net.save(tmp_path / "m.keras")
    back = NetModel.load(tmp_path / "m.keras", with_optimizer=True)
    base = back.keras_model.get_layer("backbone")
    assert flags(base) == trained and 0 < sum(trained) < len(trained) / 2
    result = train(back, images, config, initial_epoch=2)  # no prepare: the file's flags and optimizer
    assert result.status == "finished" and flags(base) == trained
    assert back.keras_model.optimizer.learning_rate.numpy() == pytest.approx(0.01 * 0.1)
