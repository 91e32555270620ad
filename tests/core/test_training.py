import math
import threading

import numpy as np

from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.events import BatchProgress, EpochEnd
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.fit import train

from tests_support import TINY_HYPER, write_image_folder


def _setup(tmp_path, **hyper):
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=20, size=12), image_size=12)
    config = HyperParams.from_dict({**TINY_HYPER, **hyper}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    return images, config, net


def test_training_learns_and_reports_each_epoch(tmp_path):
    images, config, net = _setup(tmp_path, epochs=3)
    train_set, val = images.split(0.25, seed=0)
    events = []
    result = train(net, train_set, config, validation=val, emit=events.append)
    assert result.status == "finished" and result.epochs_done == 3
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert result.history["accuracy"][-1] > 0.7  # three classes: chance is 0.33
    assert result.history["loss"][-1] < result.history["loss"][0]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3] and epochs[-1].logs["val_accuracy"] == result.history["val_accuracy"][-1]
    predictions = net.keras_model.predict(val.x, verbose=0).argmax(axis=1)
    assert (predictions == val.y).mean() > 0.7


def test_stop_ends_training_within_a_batch_and_keeps_the_model(tmp_path):
    images, config, net = _setup(tmp_path, epochs=5, batch_size=4)
    before = [w.copy() for w in net.keras_model.get_weights()]
    stop = threading.Event()
    batches = []

    def emit(event):
        if isinstance(event, BatchProgress):
            batches.append(event)
        if isinstance(event, EpochEnd) and event.epoch == 1:
            stop.set()

    result = train(net, images, config, emit=emit, stop=stop)
    assert result.status == "stopped" and result.epochs_done == 1
    assert result.message == "stopped by the user after 1 of 5 epochs"
    assert len(result.history["loss"]) == 1
    after = net.keras_model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))  # weights as trained so far


def test_a_saturated_loss_at_the_clipping_ceiling_counts_as_diverged():
    from cnn_tui.core.training.fit import divergence

    # JAX and torch: Keras clips the probabilities to [1e-7, 1 - 1e-7], so a blown-up 3-class network
    # that always answers one class sits at 2/3 * -ln(1e-7) = 10.7 and never reaches 100 x chance
    assert divergence(2 / 3 * -math.log(1e-7), 3) == "loss reached 10.7 (chance level is 1.10)"
    assert divergence(0.99 * -math.log(1e-7), 100) is not None and divergence(1e4, 10) is not None
    assert divergence(float("nan"), 3) == "loss became nan"
    for plausible, classes in [(1.2, 3), (2.5, 2), (5.0, 10), (12.0, 1000)]:  # chance 1.10, 0.69, 2.30, 6.91
        assert divergence(plausible, classes) is None


def test_diverging_loss_ends_the_run_with_a_message(tmp_path):
    images, config, net = _setup(tmp_path, init_rate=1e6, epochs=4)
    result = train(net, images, config)
    assert result.status == "failed"
    assert "training diverged; try a lower init_rate" in result.message
    assert result.epochs_done <= 1
