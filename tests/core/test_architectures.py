"""The architecture registry, augmentation, training options and the callbacks factory."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.models.model import METADATA_MEMBER, NetModel, build_model
from cnn_tui.core.params.files import DataParams, HyperParams, ModelConfig, check_fits
from cnn_tui.core.training.fit import train
from tests.tests_support import class_ordered_set

SMALL = dict(num_filters=4, num_units=8, epochs=1, batch_size=8, blocks=2)


def tiny(size: int = 12):
    return class_ordered_set(classes=3, per_class=8, size=size)


@pytest.mark.parametrize("name", ["seed_cnn", "cnn", "resnet"])
def test_each_architecture_trains_saves_loads_and_predicts_the_same(tmp_path, name):
    images = tiny()
    config = ModelConfig(architecture=name, **SMALL)
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    result = train(net, images, config)
    assert result.status == "finished" and result.epochs_done == 1
    before = net.keras_model.predict(images.x, verbose=0)
    net.save(tmp_path / "m.keras")
    back = NetModel.load(tmp_path / "m.keras")
    assert back.config == config and back.config.architecture == name
    assert np.allclose(back.keras_model.predict(images.x, verbose=0), before, atol=1e-6)
    assert back.title == net.title


def test_the_seed_network_is_exactly_the_seeds():
    net = build_model(ModelConfig(num_filters=32, num_units=512), image_size=28, channels=1,
                      class_names=[str(i) for i in range(10)])
    assert net.keras_model.count_params() == 818_026
    assert [layer.name for layer in net.keras_model.layers] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense", "dropout", "dense_1"]
    assert not any(layer.name.startswith("augment") for layer in net.keras_model.layers)


def test_augmentation_changes_training_images_but_never_predictions():
    images = tiny(16)
    config = ModelConfig(flip="horizontal", rotation=0.2, zoom=0.2, translation=0.2, contrast=0.3, brightness=0.2,
                         **SMALL)
    net = build_model(config, image_size=16, channels=1, class_names=images.class_names)
    names = [layer.name for layer in net.keras_model.layers]
    assert names[:6] == ["augment_flip", "augment_rotation", "augment_zoom", "augment_translation",
                         "augment_contrast", "augment_brightness"]
    first = net.keras_model.predict(images.x[:4], verbose=0)
    assert np.array_equal(first, net.keras_model.predict(images.x[:4], verbose=0))
    front = net.keras_model.layers[1]  # rotation: in training mode it moves pixels
    assert not np.allclose(np.asarray(front(images.x[:4], training=True)), images.x[:4])
    assert np.allclose(np.asarray(front(images.x[:4], training=False)), images.x[:4])


@pytest.mark.parametrize("options", [
    dict(optimizer="adam", schedule="cosine", warmup_epochs=1, epochs=2),
    dict(optimizer="adamw", weight_decay=0.01, schedule="constant", reduce_on_plateau=1),
    dict(label_smoothing=0.1, class_weight="balanced"),
    dict(architecture="cnn", batch_norm=False, pooling="avg", head="flatten", dense_layers=2),
])
def test_training_options_train(options):
    images = tiny()
    train_set, validation = images.split(0.25, 0)
    config = ModelConfig(**{**SMALL, **options})
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    result = train(net, train_set, config, validation=validation)
    assert result.status == "finished", result.message
    assert all(math.isfinite(v) for v in result.history["val_loss"])


def test_a_cosine_schedule_spans_the_whole_training():
    images = tiny()
    config = ModelConfig(**{**SMALL, "optimizer": "adam", "schedule": "cosine", "epochs": 2, "init_rate": 0.01})
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    train(net, images, config)
    optimizer = net.keras_model.optimizer
    rate = float(optimizer.learning_rate)  # the schedule's value at the last step: the end of the cosine
    assert int(optimizer.iterations) == 2 * 3  # 24 images, batches of 8
    assert rate < 1e-3 * 0.01 + 1e-9


def test_early_stopping_keeps_and_saves_the_best_epoch(tmp_path):
    from dataclasses import replace

    from cnn_tui.core.runs import steps
    from cnn_tui.core.runs.folder import Run
    from cnn_tui.core.training.callbacks import MIN_DELTA

    # shuffled labels: nothing to learn, so the validation loss soon gets worse again (overfitting)
    images = tiny()
    images = replace(images, y=np.random.default_rng(3).permutation(images.y))
    data = DataParams(num_classes=3, train_dir="t", test_dir="t", image_size=12, base_dir=tmp_path)
    hyper = HyperParams.from_dict({**SMALL, "epochs": 12, "patience": 2, "init_rate": 0.05, "schedule": "constant",
                                   "batch_size": 4})
    net = build_model(hyper.first(), image_size=12, channels=1, class_names=images.class_names)
    run = Run.create(tmp_path / "results", "train")
    outcome = steps.train_run(net, images, data, hyper, validate=0.25, run=run)
    result = outcome.result
    losses = result.history["val_loss"]
    assert result.best_epoch < result.epochs_done, losses  # the case under test: a later epoch was worse
    assert losses[result.best_epoch - 1] <= min(losses) + MIN_DELTA
    assert result.epochs_done <= result.best_epoch + 2  # patience 2
    assert outcome.details["best_epoch"] == result.best_epoch
    if result.best_epoch < result.epochs_done:
        assert "kept the best" in result.message
    # the saved model is the best epoch's: it scores the validation images as that epoch did
    _, validation = images.split(0.25, data.seed)
    saved = NetModel.load(run.file("model.keras"))
    loss = saved.keras_model.evaluate(validation.x, validation.y, verbose=0)[0]
    assert loss == pytest.approx(losses[result.best_epoch - 1], rel=1e-3, abs=1e-4)


def test_the_best_epoch_callback_restores_the_best_weights_after_patience():
    from cnn_tui.core.training.callbacks import best_epoch_callback

    net = build_model(ModelConfig(**SMALL), image_size=12, channels=1, class_names=["a", "b"])
    callback = best_epoch_callback("val_loss", 2)
    callback.set_model(net.keras_model)
    marks = {}
    for epoch, loss in enumerate([1.0, 0.5, 0.7, 0.8, 0.4]):
        net.keras_model.set_weights([np.full_like(w, epoch) for w in net.keras_model.get_weights()])
        marks[epoch] = epoch
        callback.on_epoch_end(epoch, {"val_loss": loss})
        if net.keras_model.stop_training:
            break
    assert epoch == 3 and callback.best_epoch == 2 and callback.stopped_early
    callback.on_train_end()
    assert all(np.all(w == 1) for w in net.keras_model.get_weights())


def test_model_files_from_before_the_registry_load_as_the_seed_network(tmp_path):
    """A file written by earlier versions records the seed's ten fields only."""
    images = tiny()
    config = ModelConfig(**SMALL)
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    path = net.save(tmp_path / "new.keras")
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == METADATA_MEMBER:
                meta = json.loads(data)
                meta["hyper_params"] = {k: meta["hyper_params"][k] for k in (
                    "init_rate", "decay_steps", "decay_rate", "kernel_size", "num_filters", "num_units", "momentum",
                    "drop_out", "epochs", "batch_size")}
                del meta["epochs_done"]
                data = json.dumps(meta).encode()
            target.writestr(item, data)
    back = NetModel.load(old)
    assert back.config.architecture == "seed_cnn" and back.config.optimizer == "sgd"
    assert back.config.num_filters == 4 and back.epochs_done is None
    assert np.allclose(back.keras_model.predict(images.x, verbose=0), net.keras_model.predict(images.x, verbose=0))


def test_the_seed_files_load_and_save_back_unchanged(tmp_path):
    data = {"init_rate": [0.02, 0.01], "decay_steps": 400, "decay_rate": 0.9, "kernel_size": 3,
            "num_filters": [32, 40], "num_units": [512, 800], "momentum": 0.9, "drop_out": 0.2, "epochs": [5, 10],
            "batch_size": [64, 80]}
    hyper = HyperParams.from_dict(data)
    assert hyper.first().architecture == "seed_cnn" and hyper.first().schedule == "exponential"
    assert json.loads(hyper.save(tmp_path / "h.json").read_text()) == data
    assert set(hyper.grid()) == {"init_rate", "num_filters", "num_units", "epochs", "batch_size"}


@pytest.mark.parametrize(("options", "message"), [
    (dict(architecture="cnn", blocks=5), "blocks 5 is too many for image_size 12: each block halves the image; "
                                         "use at most 3"),
    (dict(architecture="cnn", blocks=2, kernel_size=7), "kernel_size 7 is larger than the 6x6 image the last block"),
    (dict(architecture="resnet", blocks=5), "blocks 5 is too many for image_size 12"),
    (dict(schedule="exponential", reduce_on_plateau=2), "reduce_on_plateau needs schedule constant"),
])
def test_networks_that_cannot_fit_are_one_line(tmp_path, options, message):
    data = DataParams(num_classes=3, train_dir="t", test_dir="t", image_size=12, base_dir=tmp_path)
    with pytest.raises(ParamsError) as caught:
        check_fits(data, ModelConfig(**{**SMALL, **options}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_architecture_names_the_choices():
    with pytest.raises(ParamsError) as caught:
        HyperParams.from_dict({"architecture": "vgg99"})
    assert "architecture must be one of seed_cnn, cnn, resnet" in str(caught.value)


def test_a_grid_over_architectures_runs_every_one():
    from cnn_tui.core.tuning.options import SearchOptions
    from cnn_tui.core.tuning.search import tune

    images = class_ordered_set(classes=2, per_class=9, size=12)
    hyper = HyperParams.from_dict({**SMALL, "architecture": ["seed_cnn", "cnn"], "batch_size": 6})
    result = tune(images, hyper, SearchOptions(cv=2))
    assert result.status == "finished", result.message
    assert sorted({row["architecture"] for row in result.rows}) == ["cnn", "seed_cnn"]
    assert all(row["status"] == "ok" for row in result.rows)


def test_mixed_precision_is_ignored_without_a_gpu():
    from cnn_tui.core.backend import accelerators, load_keras

    if accelerators():
        pytest.skip("this machine has a GPU")
    net = build_model(ModelConfig(mixed_precision=True, **SMALL), image_size=12, channels=1, class_names=["a", "b"])
    assert net.keras_model.layers[0].compute_dtype == "float32"
    assert load_keras().config.dtype_policy().name == "float32"


def test_fields_no_listed_architecture_uses_stay_out_of_the_grid():
    backbone = HyperParams.from_dict({"architecture": "mobilenet_v3_small", "num_filters": [4, 8], "momentum": [0.8, 0.9],
                                      "optimizer": "adam"})
    assert backbone.grid() == {}
    both = HyperParams.from_dict({"architecture": ["seed_cnn", "mobilenet_v3_small"], "num_filters": [4, 8]})
    assert set(both.grid()) == {"architecture", "num_filters"}


@pytest.mark.parametrize("name", ["cnn", "resnet", "mobilenet_v3_small"])
def test_batch_norm_settles_within_a_small_sets_steps(name):
    """Keras's default momentum (0.99; MobileNetV3's 0.999) leaves the running statistics that
    inference uses mostly at their initial values after a few hundred steps: predictions at chance."""
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    net = build_model(ModelConfig(architecture=name, **SMALL), image_size=12, channels=1, class_names=["a", "b"])
    found = []

    def walk(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer.momentum)
        for inner in getattr(layer, "layers", []):
            walk(inner)

    walk(net.keras_model)
    assert found and set(found) == {0.9}
