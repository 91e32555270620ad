"""Train a model on an ImageSet, with or without validation, reporting through events.

Per batch the callback only counts, checks the stop flag, and (at most ten
times a second) emits progress; a set stop flag ends ``fit`` after the current
batch with the weights as trained so far. A NaN or infinite loss ends the run
with a message instead of training on garbage.

A fit that runs out of device or host memory is tried again from the weights it started with,
at half the batch with Keras's gradient accumulation over twice the batches (one update per
configured batch, the schedule counted in those), down to ``OOM_FLOOR``; then it fails with one
line naming the batch sizes tried. A full disk is never out of memory (``backend.is_out_of_memory``).
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_tui.core.architectures import architecture
from cnn_tui.core.architectures.phases import Phase
from cnn_tui.core.backend import is_out_of_memory, load_keras
from cnn_tui.core.data import feeding
from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.errors import UserError
from cnn_tui.core.events import BatchProgress, Emit, EpochEnd, Notice, TrainingStarted, ignore
from cnn_tui.core.models.augmentation import batch_augmentation
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.models.optimizers import compile_model, one_hot_targets
from cnn_tui.core.params.files import ModelConfig
from cnn_tui.core.training.callbacks import best_epoch, training_callbacks

PROGRESS_INTERVAL = 0.1  # seconds between BatchProgress events (<= 10 UI updates a second)
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
# An epoch's cross-entropy this many times the chance level (ln of the class count) means the
# weights blew up: on TensorFlow Keras computes it from the softmax's logits, so it can grow huge
# without ever becoming NaN, and training would "finish" at chance accuracy.
DIVERGED_FACTOR = 100
# On JAX and torch Keras computes it from the softmax's probabilities clipped to [eps, 1 - eps], so
# one sample's loss is at most -ln(eps) (16.1 at Keras's eps 1e-7) and a blown-up, saturated network
# sits near (1 - accuracy) * 16.1 for good, never at 100 x chance. A mean loss above this share of
# that ceiling (and 3 x chance) means the true class gets a probability of about eps ** 0.4: diverged.
CEILING_SHARE = 0.4
CHANCE_MARGIN = 3
# the smallest batch an out-of-memory fit is retried at: below it the fit fails
OOM_FLOOR = 1


class OutOfMemory(UserError):
    """A fit ran out of memory at every batch size down to the floor (one line naming them)."""


def divergence(loss: float, num_classes: int, epsilon: float = 1e-7) -> str | None:
    """Why a loss value means training diverged, or None if it is plausible. ``epsilon``: the
    clipping of the probabilities in Keras's cross-entropy (``keras.config.epsilon()``)."""
    if not math.isfinite(loss):
        return f"loss became {loss}"
    chance = math.log(max(num_classes, 2))
    ceiling = -math.log(epsilon)
    limit = min(DIVERGED_FACTOR * chance, max(CEILING_SHARE * ceiling, CHANCE_MARGIN * chance))
    if loss > limit:
        return f"loss reached {loss:.3g} (chance level is {chance:.2f})"
    return None


@dataclass
class TrainResult:
    status: str  # finished | stopped | failed
    message: str
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_done: int = 0
    epochs: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    best_epoch: int | None = None  # early stopping kept this epoch's weights (1-based)
    batch_size: int = 0  # the batch it trained at (smaller than configured after running out of memory)
    accumulation: int = 1  # batches a weight update accumulates (Keras's gradient_accumulation_steps)
    out_of_memory: list[int] = field(default_factory=list)  # the batch sizes that ran out of memory

    @property
    def retried(self) -> str | None:
        """What running out of memory changed, in words (None when it never did)."""
        if not self.out_of_memory:
            return None
        tried = ", ".join(str(b) for b in self.out_of_memory)
        return (f"out of memory at batch {tried}: trained at batch {self.batch_size} with "
                f"{self.accumulation} batches accumulated per update (effective batch "
                f"{self.batch_size * self.accumulation})")

    def history_rows(self) -> list[dict[str, float]]:
        """One dict per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds."""
        rows = []
        for i in range(self.epochs_done):
            row: dict[str, float] = {"epoch": i + 1}
            for key, values in self.history.items():
                if i < len(values):
                    row[key] = values[i]
            rows.append(row)
        return rows


def steps_per_epoch(samples: int, batch_size: int) -> int:
    return max(1, math.ceil(samples / batch_size))


def make_progress_callback(
    *,
    num_classes: int,
    epochs: int,
    batches: int,
    batch_size: int,
    emit: Emit,
    stop: threading.Event | None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    initial_epoch: int = 0,
    history: dict[str, list[float]] | None = None,
) -> Any:
    """A Keras callback reporting progress; built lazily because Keras is imported lazily.
    A resumed run starts at ``initial_epoch`` with the ``history`` of the epochs before it."""
    keras = load_keras()

    class ProgressCallback(keras.callbacks.Callback):
        # Batch hooks may run on Keras's dispatch threads (JAX, torch), so the training
        # loop never waits for them; the lock keeps the counters right when they do. They reach
        # the model through ``_model``, never ``self.model``: on JAX that property writes the
        # loop's state back into the variables, and from a dispatch thread it can write buffers
        # the next step has already donated (``Array has been deleted`` out of ``fit``).
        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()
            self.stopped = False
            self.bad_loss: str | None = None
            self.epoch = 0
            self.batch = 0
            self.batches_total = 0
            self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
            self.history.setdefault("seconds", [0.0] * initial_epoch)

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.run_started = time.perf_counter()
            self.last_emit = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.batch = 0
            self.epoch_started = time.perf_counter()

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            # Keras calls this on the training loop's thread, before the step: a stop set by now
            # ends the fit after this batch on every backend. The end hook alone would be late
            # where it is dispatched to a thread (JAX): the loop may run an epoch's few batches
            # before the thread gets to it, and a stop asked at the start would keep an epoch.
            if stop is not None and stop.is_set():
                with self.lock:
                    self.stopped = True
                self._model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            with self.lock:
                self.batch = max(self.batch, batch + 1)
                self.batches_total += 1
                if stop is not None and stop.is_set():
                    self.stopped = True
                    self._model.stop_training = True
                now = time.perf_counter()
                if now - self.last_emit < PROGRESS_INTERVAL:
                    return
                self.last_emit = now
            loss = _as_float((logs or {}).get("loss"))
            if loss is not None and not math.isfinite(loss):
                self._bad(f"loss became {loss}")
            elapsed = now - self.epoch_started
            run_elapsed = now - self.run_started
            left = (epochs - initial_epoch) * batches - self.batches_total
            emit(
                BatchProgress(
                    epoch=self.epoch + 1,
                    epochs=epochs,
                    batch=self.batch,
                    batches=batches,
                    images_per_second=self.batch * batch_size / max(elapsed, 1e-9),
                    loss=loss,
                    accuracy=_as_float((logs or {}).get("accuracy")),
                    eta_seconds=run_elapsed / self.batches_total * left,
                )
            )

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if stop is not None and stop.is_set():
                self._model.stop_evaluating = True  # skip the rest of a stopped epoch's validation

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self.epoch_started
            values = {k: float(v) for k, v in (logs or {}).items() if k in HISTORY_KEYS and _as_float(v) is not None}
            if self.stopped and self.batch < batches:
                return  # a partial epoch is not an epoch: keep history to whole epochs
            for key, value in values.items():
                self.history.setdefault(key, []).append(value)
            self.history["seconds"].append(seconds)
            if problem := divergence(values.get("loss", 0.0), num_classes, keras.config.epsilon()):
                self._bad(problem)
            emit(EpochEnd(epoch + 1, epochs, values, seconds))
            if on_epoch_end is not None and self.bad_loss is None:
                on_epoch_end(epoch + 1, values)

        def _bad(self, problem: str) -> None:
            if self.bad_loss is None:
                self.bad_loss = f"{problem} in epoch {self.epoch + 1}: training diverged; try a lower init_rate"
            self._model.stop_training = True  # called from a batch hook too: no state sync (see above)

    return ProgressCallback()


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def class_weights(y: Any, num_classes: int) -> dict[int, float]:
    """``balanced``: each class weighted by the inverse of its share (scikit-learn's formula)."""
    from sklearn.utils.class_weight import compute_class_weight  # noqa: PLC0415 — scikit-learn loads lazily (about a second): not at start-up

    present = np.unique(np.asarray(y))
    weights = compute_class_weight("balanced", classes=present, y=np.asarray(y))
    out = {int(c): float(w) for c, w in zip(present, weights)}
    return {c: out.get(c, 1.0) for c in range(num_classes)}


def fit_targets(config: ModelConfig, y: Any, num_classes: int) -> Any:
    """The labels as the loss wants them: class indices, or one-hot rows for label smoothing."""
    if not one_hot_targets(config):
        return y
    return np.eye(num_classes, dtype="float32")[np.asarray(y)]


def fit_stages(net: NetModel, config: ModelConfig, batches: int, initial_epoch: int,
               until: int | None = None, compiled: bool = False, *, accumulation: int = 1,
               step_scale: float = 1.0) -> list[tuple[int, int, Any]]:
    """(first epoch, last epoch, prepare) of each stage still to train. A fresh run is compiled
    again first, so a schedule that spans the training (cosine) knows the batches per epoch,
    unless it is ``compiled`` for them already (a search's reused network, ``core.tuning.fit_pool``);
    a resumed run keeps the optimizer state its file restored. ``accumulation``, ``step_scale``:
    a fit retried at a smaller batch (``models.optimizers.make_optimizer``)."""
    def fresh() -> None:
        compile_model(net.keras_model, config, batches, accumulation=accumulation, step_scale=step_scale)

    def prepared(phase: Phase) -> Callable[[], None]:
        def prepare() -> None:
            phase.set_trainable()
            compile_model(net.keras_model, phase.config, batches, rate_factor=phase.rate_factor,
                          accumulation=accumulation, step_scale=step_scale)

        return prepare

    arch = architecture(config.architecture)
    planned = ([(phase.last_epoch, prepared(phase)) for phase in arch.phases(net.keras_model, config)]
               if arch.phases else [(config.epochs, None if compiled else fresh)])
    stages, start = [], 0
    last = min(until or config.epochs, config.epochs)
    for end, prepare in planned:
        end = min(end, last)
        if end > initial_epoch and end > start:
            first = max(start, initial_epoch)
            # the first stage of a fresh run is prepared; a resumed run mid-stage keeps its optimizer
            stages.append((first, end, prepare if first == start else None))
        start = end
    return stages


def _fit(
    net: NetModel,
    train_set: ImageSet,
    config: ModelConfig,
    *,
    validation: ImageSet | None = None,
    emit: Emit = ignore,
    stop: threading.Event | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    initial_epoch: int = 0,
    history: dict[str, list[float]] | None = None,
    title: str = "",
    log_dir: Any = None,
    until: int | None = None,
    compiled: bool = False,
    best_path: Any = None,
    on_write_error: Callable[[str, BaseException], None] | None = None,
    accumulation: int = 1,
    step_scale: float = 1.0,
) -> TrainResult:
    """One attempt of ``train`` at ``config.batch_size``, ``accumulation`` batches an update.

    A resumed run passes the epochs already done (``initial_epoch``) and their ``history``;
    the model then carries its optimizer state (momentum, the schedule's step) from its file.
    ``log_dir``: where TensorBoard event files of the epochs go. ``until``: stop after this epoch
    (a hyperband round), the schedule still planned over all ``config.epochs``. ``compiled``: the
    model is compiled for ``config`` and these batches already (its traced steps are kept).
    ``best_path``: where early stopping keeps the best epoch's weights (``*.weights.h5``), so a
    resumed run keeps the best of all its epochs, not only of the resumed ones. ``on_write_error``
    hears of a file a callback could not write (the TensorBoard logs, the best weights); training goes on.
    """
    batches = steps_per_epoch(len(train_set), config.batch_size)
    epochs = min(until or config.epochs, config.epochs)
    callback = make_progress_callback(
        num_classes=net.num_classes,
        epochs=epochs,
        batches=batches,
        batch_size=config.batch_size,
        emit=emit,
        stop=stop,
        on_epoch_end=on_epoch_end,
        initial_epoch=initial_epoch,
        history=history,
    )
    callbacks = training_callbacks(config, validation=validation is not None, progress=callback, log_dir=log_dir,
                                   history={k: v[:initial_epoch] for k, v in (history or {}).items()},
                                   best_path=best_path, on_write_error=on_write_error)
    emit(TrainingStarted(epochs, batches, config.batch_size, len(train_set),
                         len(validation) if validation is not None else 0, initial_epoch, title))
    y = fit_targets(config, train_set.y, net.num_classes)
    augmentation = batch_augmentation(config)  # its draws follow Keras's global seed, as the model's layers do
    if augmentation is not None:  # RandAugment, erasing, MixUp, CutMix: the training batches only
        weights = None
        if config.class_weight == "balanced":  # as sample weights of the (mixed) labels, see augmented_batches
            balanced = class_weights(train_set.y, net.num_classes)
            weights = np.array([balanced[c] for c in range(net.num_classes)], np.float32)
        inputs = {"x": feeding.augmented_batches(train_set.x, y, config.batch_size, augmentation,
                                                 seed=int(np.random.randint(2**31 - 1)), class_weights=weights),
                  "shuffle": False}  # the dataset reshuffles itself each epoch
        if validation is not None:  # validation sees its images as they are
            val_y = fit_targets(config, validation.y, net.num_classes)
            inputs["validation_data"] = (feeding.batches(validation.x, val_y, config.batch_size, shuffle=False)
                                         if feeding.is_streamed(validation.x) else (validation.x, val_y))
    elif feeding.is_streamed(train_set.x):  # too big for memory: scaled batch by batch from disk
        inputs: dict[str, Any] = {"x": feeding.batches(train_set.x, y, config.batch_size, shuffle=True)}
        if validation is not None:
            val_y = fit_targets(config, validation.y, net.num_classes)
            inputs["validation_data"] = feeding.batches(validation.x, val_y, config.batch_size, shuffle=False)
    else:  # numpy arrays: measured as fast as PyDataset or tf.data here (docs/benchmarks.md)
        inputs = {"x": train_set.x, "y": y, "batch_size": config.batch_size, "shuffle": True}
        if validation is not None:
            inputs["validation_data"] = (validation.x, fit_targets(config, validation.y, net.num_classes))
    if config.class_weight == "balanced" and augmentation is None:
        inputs["class_weight"] = class_weights(train_set.y, net.num_classes)
    started = time.perf_counter()
    for first, last, prepare in fit_stages(net, config, batches, initial_epoch, epochs, compiled,
                                           accumulation=accumulation, step_scale=step_scale):
        if prepare is not None:
            prepare()
        net.keras_model.fit(epochs=last, initial_epoch=first, callbacks=callbacks, verbose=0, **inputs)
        if callback.stopped or callback.bad_loss or net.keras_model.stop_training:
            break
    seconds = time.perf_counter() - started
    done = len(callback.history["seconds"])
    images = callback.batches_total * config.batch_size
    best = best_epoch(callbacks)
    if callback.bad_loss:
        status, message = "failed", callback.bad_loss
    elif callback.stopped:
        status, message = "stopped", f"stopped by the user after {done} of {epochs} epochs"
    elif best is not None and done < epochs:
        status, message = "finished", f"stopped early after {done} of {epochs} epochs; kept the best, epoch {best}"
    else:
        status, message = "finished", f"trained {epochs} epochs"
        if best is not None and best != done:
            message += f"; kept the best, epoch {best}"
    return TrainResult(
        status=status,
        message=message,
        history=callback.history,
        epochs_done=done,
        epochs=epochs,
        seconds=seconds,
        images_per_second=min(images, len(train_set) * (epochs - initial_epoch)) / max(seconds, 1e-9),
        best_epoch=best,
        batch_size=config.batch_size,
        accumulation=accumulation,
    )


def train(
    net: NetModel,
    train_set: ImageSet,
    config: ModelConfig,
    *,
    initial_epoch: int = 0,
    compiled: bool = False,
    emit: Emit = ignore,
    **options: Any,
) -> TrainResult:
    """Fit ``net`` in place. Returns how it ended; the model keeps whatever it learned (with
    early stopping, the best epoch's weights). The options are ``_fit``'s (validation, stop,
    on_epoch_end, history, title, log_dir, until, best_path, on_write_error).

    A fit that runs out of memory is tried again from the state it started with (every variable
    of the network set back, the optimizer compiled fresh) at half the batch, accumulating the
    gradients of ``configured // batch`` batches per update, so the updates, the effective batch
    and the learning rate an epoch are as configured; below ``OOM_FLOOR`` it raises ``OutOfMemory``.
    A resumed fit (``initial_epoch`` > 0) goes on at the batch and accumulation its checkpoint's
    optimizer trained with, and is not retried: it would lose the optimizer state it resumes."""
    accumulation = 1
    if initial_epoch > 0:
        optimizer = getattr(net.keras_model, "optimizer", None)
        accumulation = int(getattr(optimizer, "gradient_accumulation_steps", None) or 1)
    start = [np.array(v.numpy(), copy=True) for v in net.keras_model.variables] if initial_epoch == 0 else None
    full_batches = steps_per_epoch(len(train_set), config.batch_size)
    failed: list[int] = []
    while True:
        batch = max(OOM_FLOOR, config.batch_size // accumulation)
        fit_config = config.replace(batch_size=batch) if batch != config.batch_size else config
        step_scale = steps_per_epoch(len(train_set), batch) / full_batches
        try:
            result = _fit(net, train_set, fit_config, initial_epoch=initial_epoch, compiled=compiled and not failed,
                          emit=emit, accumulation=accumulation, step_scale=step_scale, **options)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failed.append(batch)
            smaller = config.batch_size // (accumulation * 2)
            if start is None or batch <= OOM_FLOOR or smaller < OOM_FLOOR:
                tried = ", ".join(str(b) for b in failed)
                why = ("resumed fits are not retried" if start is None
                       else "try a smaller num_units, num_filters or image_size")
                raise OutOfMemory(f"out of memory at batch size {tried}: {why}") from None
            del exc  # its traceback holds the failed attempt's buffers
            gc.collect()
            for variable, value in zip(net.keras_model.variables, start):
                variable.assign(value)
            accumulation *= 2
            emit(Notice(f"out of memory at batch {batch}: retrying from the start at batch {smaller}, "
                        f"{accumulation} batches accumulated per update", "warning"))
            continue
        result.out_of_memory = failed
        if result.retried:
            result.message += f"; {result.retried}"
        return result
