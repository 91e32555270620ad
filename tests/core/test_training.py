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


def _out_of_memory_above(net, largest):
    """The model's fit runs out of (host) memory at a batch above ``largest``; the batches it ran at."""
    fit = net.keras_model.fit
    seen = []

    def limited_fit(*args, **kwargs):
        batch = kwargs.get("batch_size")
        seen.append(batch)
        if batch > largest:
            raise MemoryError(f"injected: out of memory at batch {batch}")
        return fit(*args, **kwargs)

    net.keras_model.fit = limited_fit
    return seen


def test_out_of_memory_is_retried_at_half_the_batch_with_the_same_rate_schedule(tmp_path):
    from cnn_tui.core.events import Notice

    # 60 images, 4 epochs planned, 2 trained (the cosine is mid-way): batch 16 runs out of memory
    images, config, net = _setup(tmp_path, epochs=4, batch_size=16, schedule="cosine", ema=0.9)
    start = [w.copy() for w in net.keras_model.get_weights()]
    events = []
    seen = _out_of_memory_above(net, 8)
    result = train(net, images, config, emit=events.append, until=2)
    assert seen == [16, 8] and result.status == "finished" and result.epochs_done == 2
    assert result.batch_size == 8 and result.accumulation == 2 and result.out_of_memory == [16]
    assert "out of memory at batch 16: trained at batch 8 with 2 batches accumulated" in result.message
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == ["out of memory at batch 16: retrying from the start at batch 8, "
                       "2 batches accumulated per update"]
    optimizer = net.keras_model.optimizer
    assert optimizer.gradient_accumulation_steps == 2
    assert int(np.asarray(optimizer.iterations)) == 2 * 4  # updates: 2 epochs of 4 batches of 16
    retried_rate = float(np.asarray(optimizer.learning_rate))

    # the same fit never out of memory, from the same initial weights: the same rate after 2 epochs
    _, _, plain = _setup(tmp_path / "plain", epochs=4, batch_size=16, schedule="cosine", ema=0.9)
    plain.keras_model.set_weights(start)
    plain_result = train(plain, images, config, until=2)
    assert plain_result.out_of_memory == [] and plain_result.accumulation == 1 and plain_result.batch_size == 16
    assert int(np.asarray(plain.keras_model.optimizer.iterations)) == 2 * 4
    assert 0 < retried_rate < config.init_rate
    assert math.isclose(retried_rate, float(np.asarray(plain.keras_model.optimizer.learning_rate)), rel_tol=1e-5)


def test_an_exponential_schedule_decays_by_the_configured_batch_after_a_retry(tmp_path):
    # 40 images: 3 batches of 16, 5 of 8 (not twice 3): the rate an epoch still follows the configured batch
    images, config, net = _setup(tmp_path, epochs=1, batch_size=16, schedule="exponential", decay_steps=2,
                                 decay_rate=0.5)
    images = images.split(0.333, seed=0)[0]
    assert len(images) == 40
    _out_of_memory_above(net, 8)
    result = train(net, images, config)
    assert result.batch_size == 8 and result.accumulation == 2
    expected = config.init_rate * 0.5 ** (3 / 2)  # one epoch at 16 is 3 steps of the schedule
    assert math.isclose(float(np.asarray(net.keras_model.optimizer.learning_rate)), expected, rel_tol=1e-5)


def test_out_of_memory_at_the_floor_fails_with_one_line_naming_the_batches(tmp_path):
    import pytest

    from cnn_tui.core.training.fit import OutOfMemory

    images, config, net = _setup(tmp_path, epochs=1, batch_size=8)
    seen = _out_of_memory_above(net, 0)
    with pytest.raises(OutOfMemory) as raised:
        train(net, images, config)
    assert seen == [8, 4, 2, 1]
    assert str(raised.value) == ("out of memory at batch size 8, 4, 2, 1: "
                                 "try a smaller num_units, num_filters or image_size")


def test_a_full_disk_is_not_retried_as_out_of_memory(tmp_path):
    import errno

    import pytest

    images, config, net = _setup(tmp_path, epochs=1, batch_size=8)
    calls = []

    def full_disk(*args, **kwargs):
        calls.append(kwargs.get("batch_size"))
        raise OSError(errno.ENOSPC, "No space left on device")

    net.keras_model.fit = full_disk
    with pytest.raises(OSError, match="No space left"):
        train(net, images, config)
    assert calls == [8]


def test_a_run_out_of_memory_after_an_epoch_starts_again_records_it_and_resumes_at_the_smaller_batch(tmp_path):
    from cnn_tui.core.models.model import NetModel
    from cnn_tui.core.params.files import DataParams
    from cnn_tui.core.runs import steps
    from cnn_tui.core.runs.folder import Run

    images, config, net = _setup(tmp_path, epochs=2, batch_size=16)
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 2, "batch_size": 16})
    data = DataParams(num_classes=3, train_dir="t", test_dir="t", image_size=12, base_dir=tmp_path)
    start = [w.copy() for w in net.keras_model.get_weights()]
    fit = net.keras_model.fit
    seen, weights_at_start = [], []

    def out_of_memory_in_epoch_two(*args, **kwargs):  # the first epoch at 16 is trained (and saved) first
        seen.append(kwargs["batch_size"])
        weights_at_start.append([w.copy() for w in net.keras_model.get_weights()])
        if kwargs["batch_size"] > 8:
            fit(*args, **{**kwargs, "epochs": kwargs["initial_epoch"] + 1})
            raise MemoryError("injected: out of memory")
        return fit(*args, **kwargs)

    net.keras_model.fit = out_of_memory_in_epoch_two
    run = Run.create(tmp_path / "results", "train")
    outcome = steps.train_run(net, images, data, hyper, validate=None, run=run)
    assert seen == [16, 8] and outcome.status == "finished" and outcome.result.epochs_done == 2
    for weights in weights_at_start:  # the retry starts from the weights the failed attempt started with
        assert all(np.array_equal(a, b) for a, b in zip(start, weights))
    assert outcome.details["out_of_memory_at"] == [16] and outcome.details["trained_batch_size"] == 8
    assert outcome.details["gradient_accumulation_steps"] == 2
    assert run.file("history.csv").read_text().count("\n") == 3  # a header and two epochs, not three
    saved = NetModel.load(run.file("model.keras"), with_optimizer=True)
    assert saved.keras_model.optimizer.gradient_accumulation_steps == 2
    # a resume goes on at the batch and accumulation the checkpoint trained with
    fit = saved.keras_model.fit
    resumed = []
    saved.keras_model.fit = lambda *a, **k: (resumed.append(k["batch_size"]), fit(*a, **k))[1]
    result = train(saved, images, config.replace(epochs=3), initial_epoch=2, history=outcome.result.history)
    assert resumed == [8] and result.batch_size == 8 and result.accumulation == 2 and result.epochs_done == 3
    assert int(np.asarray(saved.keras_model.optimizer.iterations)) == 3 * 4  # 3 epochs of 4 updates (batches of 16)
