"""Weight averaging (``ema``): the model validated, checkpointed, kept and saved is the moving
average of the trained weights, computed here by hand from the weights of every training step."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cnn_tui.core.backend import load_keras
from cnn_tui.core.data.dataset import load_images
from cnn_tui.core.events import EpochEnd
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.training import fit
from cnn_tui.core.training.fit import train

from tests_support import TINY_HYPER, write_image_folder

DECAY = 0.8  # low, so the average differs clearly from the last step's weights after a few steps


class StepWeights:
    """The trained weights after each optimizer step, by the step's number (a resumed run's steps
    replace those of the partial epoch a stop threw away)."""

    def __init__(self) -> None:
        self.by_step: dict[int, list[np.ndarray]] = {}

    def callback(self):
        keras = load_keras()
        steps = self.by_step

        class Record(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
                steps[step] = [keras.ops.convert_to_numpy(w).copy() for w in self.model.trainable_weights]

        return Record()

    def average(self, decay: float, until: int | None = None) -> list[np.ndarray]:
        """Keras's rule: the first step's weights, then ``decay * average + (1 - decay) * weights``."""
        average = None
        for step in sorted(self.by_step):
            if until is not None and step > until:
                break
            weights = [w.astype(np.float64) for w in self.by_step[step]]
            average = weights if average is None else [decay * a + (1 - decay) * w for a, w in zip(average, weights)]
        assert average is not None
        return average


@pytest.fixture
def recorded(monkeypatch):
    """Every fit also records its trained weights step by step."""
    record = StepWeights()
    real = fit.training_callbacks

    def with_recorder(*args, **kwargs):
        return [record.callback(), *real(*args, **kwargs)]

    monkeypatch.setattr(fit, "training_callbacks", with_recorder)
    return record


def _trainable(model) -> list[np.ndarray]:
    keras = load_keras()
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def _assert_close(actual, expected) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, atol=2e-5, rtol=1e-4)


def test_the_model_after_training_is_the_average_and_validation_scores_it(tmp_path, recorded):
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=16, size=12), image_size=12)
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 2, "batch_size": 8, "ema": DECAY}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    fit_set, validation = images.split(0.25, seed=0)
    result = train(net, fit_set, config, validation=validation)
    assert result.status == "finished"
    last_step = _trainable(net.keras_model)
    expected = recorded.average(DECAY)
    _assert_close(last_step, expected)
    # the average is not just the last step's weights (else this test could not fail)
    assert any(not np.allclose(w, e, atol=1e-4) for w, e in zip(recorded.by_step[max(recorded.by_step)], expected))
    # the last epoch's validation loss is the averaged model's
    loss, _ = net.keras_model.evaluate(validation.x, validation.y, verbose=0)
    assert result.history["val_loss"][-1] == pytest.approx(loss, rel=1e-4)


def test_early_stopping_keeps_the_average_of_its_best_epoch(tmp_path, recorded):
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=16, size=12), image_size=12)
    # a rate so high the validation loss gets worse after the first epoch, then the patience ends it
    config = HyperParams.from_dict({**TINY_HYPER, "epochs": 6, "batch_size": 8, "ema": DECAY, "patience": 1,
                                    "schedule": "constant", "init_rate": 0.05}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    fit_set, validation = images.split(0.25, seed=0)
    result = train(net, fit_set, config, validation=validation)
    best = result.best_epoch or result.epochs_done
    steps_per_epoch = fit.steps_per_epoch(len(fit_set), config.batch_size)
    _assert_close(_trainable(net.keras_model), recorded.average(DECAY, until=best * steps_per_epoch))


def test_a_stopped_run_resumes_averaging_from_its_trained_weights(params_files, tmp_path, recorded):
    data_path, hyper_path = params_files(per_class=16, hyper={"epochs": 3, "batch_size": 8, "ema": DECAY})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train", validate=0.25), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()

    def stop_after_one(event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            stop.set()

    outcome = control.run_here(run, TaskSpec.load(run.path), emit=stop_after_one, stop=stop)
    assert outcome.status == "stopped"
    resume_file = run.path / "resume.keras"
    kept = NetModel.load(run.path / "model.keras")
    first_epoch_steps = int(load_keras().ops.convert_to_numpy(NetModel.load(resume_file, with_optimizer=True)
                                                             .keras_model.optimizer.iterations))
    assert first_epoch_steps == 5  # 36 training images in batches of 8
    # the stopped run's model is the average of every step it took (the stop's partial epoch too, as
    # a run without averaging keeps the weights as trained so far)
    assert max(recorded.by_step) == first_epoch_steps + 1
    _assert_close(_trainable(kept.keras_model), recorded.average(DECAY))

    resumed, spec = control.prepare_resume(run.path)
    for step in [s for s in recorded.by_step if s > first_epoch_steps]:
        del recorded.by_step[step]  # the partial epoch the stop threw away
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished", outcome.message
    assert max(recorded.by_step) == 3 * first_epoch_steps  # three whole epochs of steps, each once
    final = NetModel.load(run.path / "model.keras")
    # the average of every step of both parts: the resumed run went on from the trained weights
    # (not from the average) and kept averaging from the restored average
    _assert_close(_trainable(final.keras_model), recorded.average(DECAY))


def test_ema_is_a_decay_below_one():
    assert HyperParams.from_dict({"ema": 0.999}).first().ema == 0.999
    assert HyperParams.from_dict({}).first().ema == 0.0
    with pytest.raises(Exception, match=r"ema.*must be in \[0, 1\), got 1"):
        HyperParams.from_dict({"ema": 1.0})
    with pytest.raises(Exception, match="ema"):
        HyperParams.from_dict({"ema": "high"})


def test_a_backbone_averages_each_phase_and_keeps_the_fine_tuned_average(tmp_path, recorded):
    keras = load_keras()
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3),
                                                 pooling="avg", include_preprocessing=True)
    weights = tmp_path / "mobile.weights.h5"
    source.save_weights(weights)  # "pretrained": the backbone is frozen first, then fine-tuned
    images = load_images(write_image_folder(tmp_path / "t", 3, per_class=6, size=12), image_size=12)
    config = HyperParams.from_dict({"architecture": "mobilenet_v3_small", "weights": str(weights), "epochs": 2,
                                    "freeze_epochs": 1, "batch_size": 9, "optimizer": "adam", "init_rate": 0.01,
                                    "schedule": "constant", "ema": DECAY}).first()
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    result = train(net, images, config)
    assert result.status == "finished" and result.epochs_done == 2
    # the fine-tuning phase compiles a new optimizer: its steps (numbered from 1 again, so they
    # replace the frozen phase's) start a new average from the frozen phase's averaged weights
    assert sorted(recorded.by_step) == [1, 2]
    assert len(recorded.by_step[1]) == len(net.keras_model.trainable_weights) > 2  # more than the head
    _assert_close(_trainable(net.keras_model), recorded.average(DECAY))
