"""The learning-rate finder: a range test (Smith 2015, fastai's ``lr_find``).

The rate grows exponentially from ``start`` to ``end`` over at most ``steps`` training batches;
each batch's loss is recorded and smoothed (an exponential moving average with bias correction).
The sweep ends early once the smoothed loss explodes (above ``EXPLODE`` times its minimum). The
suggested rate follows one named rule, ``RULE``: the rate where the smoothed loss falls fastest
(its steepest descent against log10 of the rate), looked for before the loss's minimum.

The rate is Keras's own ``ExponentialDecay`` with a growth factor: it is computed from the
optimizer's step inside the compiled train step, so it is exact per batch on every backend
(a callback assigning ``optimizer.learning_rate`` between batches is lost on JAX, whose train
state lives outside the variables during an epoch). The model's weights (and batch-norm
statistics) are restored afterwards: the finder leaves no trained model behind.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core.architectures import architecture
from cnn_tui.core.backend import load_keras
from cnn_tui.core.data import feeding
from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.events import BatchProgress, Emit, ignore
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.models.optimizers import make_loss, make_optimizer
from cnn_tui.core.params.files import HyperParams, ModelConfig
from cnn_tui.core.training.fit import PROGRESS_INTERVAL, class_weights, fit_targets

START_RATE = 1e-7
END_RATE = 10.0
SWEEP_STEPS = 200
EXPLODE = 4.0  # the sweep ends once the smoothed loss exceeds this many times its minimum
SMOOTHING = 0.98  # the moving average's weight of the past (fastai's beta)
RULE = "steepest descent of the smoothed loss"


@dataclass
class RateSweep:
    """The rates tried (one per batch), their losses and smoothed losses, and the suggestion."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None  # the rate the rule picks, for the phase that trains first
    init_rate: float | None = None  # the suggestion as the hyper params' init_rate (a phase's factor undone)
    rule: str = RULE
    status: str = "finished"  # finished | stopped
    message: str = ""
    seconds: float = 0.0

    def rows(self) -> list[list[float]]:
        return [[r, loss, s] for r, loss, s in zip(self.rates, self.losses, self.smoothed)]


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """An exponential moving average with bias correction (so the first values are not pulled to 0)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def steepest(rates: list[float], smoothed: list[float]) -> float | None:
    """The rate where the smoothed loss falls fastest against log10(rate), before its minimum; the
    first tenth of the sweep (where the average is still settling) is left out."""
    n = len(smoothed)
    if n < 3:
        return None
    low = n // 10
    lowest = int(np.argmin(smoothed))
    if lowest - low < 2:
        return rates[lowest]
    window = np.asarray(smoothed[low:lowest + 1])
    slopes = np.gradient(window, np.log10(np.asarray(rates[low:lowest + 1])))
    return float(rates[low + int(np.argmin(slopes))])


def sweep_rate(start: float, end: float, steps: int, step: int) -> float:
    """The rate of batch ``step`` (0-based): ``start`` growing to ``end`` at step ``steps``."""
    return start * (end / start) ** (step / steps)


def _variables(keras_model: Any) -> list[Any]:
    return list(keras_model.weights)


def _layers(layer: Any) -> list[Any]:
    found = [layer]
    for inner in getattr(layer, "layers", None) or ():
        found.extend(_layers(inner))
    return found


def find_rate(
    net: NetModel,
    train_set: ImageSet,
    config: ModelConfig,
    *,
    start: float = START_RATE,
    end: float = END_RATE,
    steps: int = SWEEP_STEPS,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
) -> RateSweep:
    """Sweep the rate over ``net`` trained on ``train_set`` as ``config`` trains it (its optimizer,
    loss, class weights, augmentation; a backbone's first phase) and restore the model after."""
    keras = load_keras()
    keras_model = net.keras_model
    saved = [(v, np.array(v.numpy() if hasattr(v, "numpy") else v)) for v in _variables(keras_model)]
    trainable = [(layer, layer.trainable) for layer in _layers(keras_model)]
    arch = architecture(config.architecture)
    sweep_config, factor = config, 1.0
    if arch.phases:  # a backbone: the phase that trains first (the head, the backbone frozen)
        phase = arch.phases(keras_model, config)[0]
        phase.set_trainable()
        sweep_config, factor = phase.config, phase.rate_factor
    schedule = keras.optimizers.schedules.ExponentialDecay(start, decay_steps=steps, decay_rate=end / start)
    keras_model.compile(optimizer=make_optimizer(sweep_config, rate=schedule), loss=make_loss(sweep_config),
                        metrics=["accuracy"])
    size, batch_size = len(train_set), config.batch_size
    batches = max(1, math.ceil(size / batch_size))
    sweep = RateSweep()

    class Recorder(keras.callbacks.Callback):
        """Each batch's own loss (Keras logs the epoch's running mean, weighted by batch size)."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.mean, self.seen = 0.0, 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            mean = float((logs or {}).get("loss", math.nan))
            seen = min((batch + 1) * batch_size, size)
            loss = (seen * mean - self.seen * self.mean) / max(seen - self.seen, 1)
            self.mean, self.seen = mean, seen
            step = len(sweep.rates)
            sweep.rates.append(sweep_rate(start, end, steps, step))
            sweep.losses.append(loss)
            sweep.smoothed = smooth(sweep.losses)
            now = time.perf_counter()
            if now - self.last_emit >= PROGRESS_INTERVAL:
                self.last_emit = now
                emit(BatchProgress(epoch=1, epochs=1, batch=step + 1, batches=steps,
                                   images_per_second=(step + 1) * batch_size / max(now - self.began, 1e-9),
                                   loss=loss, accuracy=None,
                                   eta_seconds=(now - self.began) / (step + 1) * (steps - step - 1)))
            current = sweep.smoothed[-1]
            if stop is not None and stop.is_set():
                sweep.status, sweep.message = "stopped", f"stopped by the user after {step + 1} batches"
                self.model.stop_training = True
            elif not math.isfinite(loss) or (step >= 5 and current > EXPLODE * min(sweep.smoothed)):
                sweep.message = f"the loss exploded at rate {sweep.rates[-1]:.3g} after {step + 1} batches"
                self.model.stop_training = True
            elif step + 1 >= steps:
                self.model.stop_training = True

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.began = time.perf_counter()
            self.last_emit = 0.0

    y = fit_targets(sweep_config, train_set.y, net.num_classes)
    if feeding.is_streamed(train_set.x):
        inputs: dict[str, Any] = {"x": feeding.batches(train_set.x, y, batch_size, shuffle=True)}
    else:
        inputs = {"x": train_set.x, "y": y, "batch_size": batch_size, "shuffle": True}
    if config.class_weight == "balanced":
        inputs["class_weight"] = class_weights(train_set.y, net.num_classes)
    began = time.perf_counter()
    try:
        keras_model.fit(epochs=math.ceil(steps / batches), callbacks=[Recorder()], verbose=0, **inputs)
    finally:  # the model as it came: trainability first (it orders nothing here), then every weight
        for layer, was in trainable:
            layer.trainable = was
        for variable, value in saved:
            variable.assign(value)
    sweep.seconds = time.perf_counter() - began
    # the exploding tail is no candidate: the rule looks only up to the loss's minimum
    sweep.suggestion = steepest(sweep.rates, sweep.smoothed)
    if sweep.suggestion is not None:
        sweep.init_rate = sweep.suggestion / factor
    if not sweep.message:
        sweep.message = f"swept {len(sweep.rates)} batches up to rate {sweep.rates[-1]:.3g}" if sweep.rates else \
            "no batch was trained"
    return sweep


def apply_rate(path: str | Path, rate: float) -> Path:
    """Write ``rate`` as the hyper params file's ``init_rate``: its other fields, their values and order
    kept (a list of rates becomes the one rate; a file without init_rate gets it last)."""
    return HyperParams.load(path).with_values({"init_rate": rate}).save(path)
