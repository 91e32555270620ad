"""The batch augmentation of training (rand_augment, random_erasing, mixup, cutmix): its fields,
the training batches it makes (mixed, soft labels; images changed) and that inference, evaluation
and a saved model never see it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_tui.core.data import feeding
from cnn_tui.core.errors import ParamsError
from cnn_tui.core.models import export
from cnn_tui.core.models.augmentation import batch_augmentation, mixed_samples
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.models.optimizers import make_loss
from cnn_tui.core.params.files import HyperParams, ModelConfig
from cnn_tui.core.training.evaluation import evaluate
from cnn_tui.core.training.fit import train
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune

from tests_support import SEED_HYPER, TINY_HYPER, class_ordered_set

MIXING = {"mixup": 0.4, "cutmix": 1.0}


def first_batch(dataset):
    return [np.asarray(part) for part in next(iter(dataset))]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mixup", -0.1, "mixup must be in [0, 10], got -0.1"),
        ("cutmix", 2, "cutmix must be in [0, 1], got 2"),
        ("rand_augment", 1.5, "rand_augment must be in [0, 1], got 1.5"),
        ("rand_augment_ops", 0, "rand_augment_ops must be in [1, 11], got 0"),
        ("random_erasing", "often", "random_erasing must be a number, got 'often'"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, field, value, message):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({**SEED_HYPER, field: value}))
    with pytest.raises(ParamsError) as caught:
        HyperParams.load(path)
    assert str(caught.value) == f"{path}: {message}"


def test_fields_default_to_off_save_load_and_join_the_grid(tmp_path):
    old = HyperParams.from_dict(SEED_HYPER).first()  # a file from before these fields
    assert (old.mixup, old.cutmix, old.rand_augment, old.rand_augment_ops, old.random_erasing) == (0, 0, 0, 2, 0)
    assert batch_augmentation(old) is None and make_loss(old) == "sparse_categorical_crossentropy"
    values = {**SEED_HYPER, "mixup": [0, 0.2], "cutmix": 0.5, "rand_augment": 0.3, "rand_augment_ops": 3,
              "random_erasing": 0.25}
    hyper = HyperParams.from_dict(values)
    again = HyperParams.load(hyper.save(tmp_path / "h.json"))
    config = again.first()
    assert (config.mixup, config.cutmix, config.rand_augment, config.rand_augment_ops, config.random_erasing) == (
        0, 0.5, 0.3, 3, 0.25)
    assert again.grid()["mixup"] == [0, 0.2]


def test_mixed_batches_have_soft_labels_that_sum_to_one_and_weigh_as_their_classes():
    images = class_ordered_set(classes=3, per_class=12)
    y = np.eye(3, dtype=np.float32)[images.y]
    config = ModelConfig(**MIXING)
    weights = np.array([1.0, 2.0, 4.0], np.float32)
    x_batch, labels, sample_weight = first_batch(
        feeding.augmented_batches(images.x, y, 36, batch_augmentation(config, seed=1), seed=1, class_weights=weights))
    assert x_batch.shape == (36, 12, 12, 1) and labels.shape == (36, 3)
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
    assert ((labels > 0.01) & (labels < 0.99)).any()  # some labels are mixtures now, not one-hot
    np.testing.assert_allclose(sample_weight, labels @ weights, rtol=1e-5)
    assert 0.0 <= x_batch.min() and x_batch.max() <= 1.0
    originals = {row.tobytes() for row in images.x}
    assert sum(row.tobytes() not in originals for row in x_batch) > 0  # images were mixed too
    # every epoch is the whole set, reshuffled
    dataset = feeding.augmented_batches(images.x, y, 10, batch_augmentation(ModelConfig(mixup=0.2), seed=1), seed=1)
    assert [len(np.asarray(batch[0])) for batch in dataset] == [10, 10, 10, 6]


def test_rand_augment_and_erasing_change_images_but_not_labels():
    images = class_ordered_set(classes=3, per_class=8)
    config = ModelConfig(rand_augment=0.8, random_erasing=1.0)
    x_batch, labels = first_batch(feeding.augmented_batches(images.x, images.y, 24, batch_augmentation(config, seed=2),
                                                            seed=2))
    order = np.sort(np.random.default_rng([2, 0]).permutation(24))  # the rows the first batch read
    assert np.array_equal(labels, images.y[order])  # class indices as they were
    changed = [not np.allclose(a, b) for a, b in zip(x_batch, images.x[order])]
    assert sum(changed) >= 20 and 0.0 <= x_batch.min() and x_batch.max() <= 1.0


def test_training_with_mixing_leaves_inference_evaluation_and_the_model_file_unmixed(tmp_path):
    images = class_ordered_set(classes=3, per_class=12)
    train_set, test_set = images.split(0.25, seed=0)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 2, **MIXING, "rand_augment": 0.5,
                                    "random_erasing": 0.5, "label_smoothing": 0.1,
                                    "class_weight": "balanced", "patience": 1}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    assert type(net.keras_model.loss).__name__ == "CategoricalCrossentropy"
    result = train(net, train_set, config, validation=test_set)
    assert result.status == "finished", result.message
    assert np.isfinite(result.history["loss"]).all() and len(result.history["val_loss"]) == result.epochs_done
    names = [layer.name for layer in net.keras_model.layers]
    assert not any(name.startswith(("augment_mixup", "augment_cutmix", "augment_rand", "augment_random_erasing"))
                   for name in names)  # the model holds no batch augmentation
    first = net.keras_model.predict(test_set.x, verbose=0)
    assert np.array_equal(first, net.keras_model.predict(test_set.x, verbose=0))  # the same input, the same answer
    ev = evaluate(net, test_set)
    assert ev.samples == len(test_set)
    assert ev.accuracy == pytest.approx(float((first.argmax(axis=1) == test_set.y).mean()))
    path = net.save(tmp_path / "mixed.keras")
    loaded = NetModel.load(path)
    assert loaded.config.mixup == 0.4 and loaded.config.cutmix == 1.0 and loaded.config.rand_augment == 0.5
    np.testing.assert_allclose(loaded.keras_model.predict(test_set.x, verbose=0), first, atol=1e-6)
    resumed = NetModel.load(path, with_optimizer=True)
    assert train(resumed, train_set, config, initial_epoch=1).status == "finished"  # a resume trains on


def test_a_model_trained_with_mixup_exports(tmp_path):
    fmt = "saved_model"
    if export.missing_packages(fmt):
        pytest.skip(f"{fmt} export needs {', '.join(export.missing_packages(fmt))}")
    images = class_ordered_set(classes=3, per_class=8)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "mixup": 0.2}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    train(net, images, config)
    net = NetModel.load(net.save(tmp_path / "m.keras"))
    done = export.export_and_check(net, fmt, export.default_path(tmp_path / "m.keras", fmt))
    assert done.parity.ok


def test_a_tuning_grid_over_mixup_runs():
    grid = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "mixup": [0, 0.2]})
    result = tune(class_ordered_set(), grid, SearchOptions(cv=2))
    assert result.status == "finished", result.message
    assert sorted({row["mixup"] for row in result.rows}) == [0, 0.2]
    assert all(row["status"] == "ok" and np.isfinite(row["loss"]) for row in result.rows)


def test_mixed_samples_show_two_images_and_their_shares():
    first = np.ones((12, 12, 1), np.float32)
    second = np.zeros((12, 12, 1), np.float32)
    samples, shares = mixed_samples(first, second, ModelConfig(mixup=0.4), count=8, seed=0)
    assert samples.shape == (8, 12, 12, 1) and shares.shape == (8,)
    # MixUp blends: each pixel is its share of the first image (ones) plus nothing of the second (zeros)
    np.testing.assert_allclose(samples.mean(axis=(1, 2, 3)), shares, atol=1e-5)
    again = mixed_samples(first, second, ModelConfig(mixup=0.4), count=8, seed=0)
    assert np.array_equal(samples, again[0]) and np.array_equal(shares, again[1])  # a still preview
    cut, cut_shares = mixed_samples(first, second, ModelConfig(cutmix=1.0), count=8, seed=0)
    assert set(np.unique(cut)) <= {0.0, 1.0}  # CutMix pastes a patch, it does not blend
    # the label share is the patch's area (Keras's box, before rounding to pixels: close on 12x12 images)
    assert np.abs(cut.mean(axis=(1, 2, 3)) - cut_shares).mean() < 0.05
    both, both_shares = mixed_samples(first, second, ModelConfig(**MIXING), count=8, seed=0)
    assert ((both[:4] > 0) & (both[:4] < 1)).any() and set(np.unique(both[4:])) <= {0.0, 1.0}  # half each
    plain, ones = mixed_samples(first, second, ModelConfig(), count=3)
    assert np.array_equal(plain, np.repeat(first[None], 3, axis=0)) and list(ones) == [1, 1, 1]
