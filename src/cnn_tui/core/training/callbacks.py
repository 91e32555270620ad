"""The one place the Keras callbacks of a fit are chosen, for ``train`` and for tuning fits.

Besides the caller's progress callback: early stopping that keeps the best epoch
(``patience``) and reduce-on-plateau (``reduce_on_plateau``), both watching the
validation loss when there is a validation set and the training loss otherwise;
and weight averaging's swaps (``ema``, ``training.averaging``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnn_tui.core import fileio
from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ResultsError
from cnn_tui.core.training import averaging, tensorboard_logs

PLATEAU_FACTOR = 0.5
MIN_DELTA = 1e-4  # a loss must improve by more than this to count as better


def monitor_for(validation: bool) -> str:
    return "val_loss" if validation else "loss"


def training_callbacks(config: Any, *, validation: bool, progress: Any = None, log_dir: Path | None = None,
                       history: dict[str, list[float]] | None = None, best_path: Path | None = None,
                       on_write_error: Callable[[str, BaseException], None] | None = None) -> list[Any]:
    """The callbacks of one fit, in the order they must run: progress (it counts the epoch and
    checkpoints it) before the callbacks that may stop training or restore weights. A resumed fit
    passes the ``history`` of the epochs done and ``best_path``, where early stopping keeps the
    best epoch's weights, so the best of the whole training is kept. A file a callback cannot
    write (TensorBoard's, the best weights) is told to ``on_write_error(name, error)``; training goes on."""
    keras = load_keras()
    monitor = monitor_for(validation)
    # weight averaging swaps the average in first, so validation, the checkpoint and the best epoch
    # see the averaged model, and its end-of-fit check runs last, after every stop decision
    first, last = averaging.averaging_callbacks(config)
    callbacks: list[Any] = [*first, progress] if progress is not None else [*first]
    if log_dir is not None and tensorboard_logs.available():  # the epoch figures as TensorBoard event files
        callbacks.append(tensorboard_logs.epoch_callback(log_dir, on_write_error))
    if config.reduce_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=PLATEAU_FACTOR,
                                                           patience=config.reduce_on_plateau, min_delta=MIN_DELTA))
    if config.patience:
        callbacks.append(best_epoch_callback(monitor, config.patience, history=(history or {}).get(monitor),
                                             best_path=best_path, on_write_error=on_write_error))
    return [*callbacks, *last]


def best_epoch(callbacks: list[Any]) -> int | None:
    """The 1-based best epoch an early-stopping callback kept, if there was one."""
    for callback in callbacks:
        if getattr(callback, "is_best_epoch", False):
            return callback.best_epoch
    return None


def best_so_far(values: list[float] | None) -> tuple[float, int | None, int]:
    """(best value, its 1-based epoch, epochs since it) of the monitored values of the epochs done,
    by the rule early stopping applies epoch by epoch."""
    best, epoch, wait = math.inf, None, 0
    for i, value in enumerate(values or []):
        if not math.isfinite(value):
            continue
        if value < best - MIN_DELTA:
            best, epoch, wait = value, i + 1, 0
        else:
            wait += 1
    return best, epoch, wait


def best_epoch_callback(monitor: str, patience: int, *, history: list[float] | None = None,
                        best_path: Path | None = None,
                        on_write_error: Callable[[str, BaseException], None] | None = None) -> Any:
    """Early stopping that always ends with the best epoch's weights: Keras's own
    ``EarlyStopping(restore_best_weights=True)`` restores them only when it stops training
    early, so a run that used all its epochs would keep the last epoch's.

    With ``best_path`` (``*.weights.h5``) each new best's weights are written there too, and a
    fit resumed with the monitored ``history`` of its earlier epochs starts from that best: its
    value, epoch and weights (read back from ``best_path``) and the epochs waited since."""
    keras = load_keras()

    class BestEpoch(keras.callbacks.Callback):
        is_best_epoch = True

        def __init__(self) -> None:
            super().__init__()
            self.best, self.best_epoch, self.wait = best_so_far(history)
            self.best_weights: list[Any] | None = None
            self.stopped_early = False

        def on_train_begin(self, logs: dict | None = None) -> None:
            if self.best_epoch is None or self.best_weights is not None:
                return
            if best_path is None or not best_path.exists():
                self.best, self.best_epoch, self.wait = math.inf, None, 0  # no weights to keep: start afresh
                return
            current = self.model.get_weights()
            try:
                self.model.load_weights(best_path)
                self.best_weights = self.model.get_weights()
            except (OSError, ValueError):  # unreadable: the resumed epochs choose the best among themselves
                self.best, self.best_epoch, self.wait = math.inf, None, 0
            self.model.set_weights(current)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not math.isfinite(float(value)):
                return
            if float(value) < self.best - MIN_DELTA:
                self.best, self.best_epoch, self.wait = float(value), epoch + 1, 0
                self.best_weights = self.model.get_weights()
                if best_path is not None:
                    try:  # atomic: a kill mid-write leaves the previous best whole
                        with fileio.atomic_path(best_path, suffix=".weights.h5") as tmp:
                            self.model.save_weights(tmp)
                    except ResultsError as exc:  # the best stays in memory; only a resume would miss it
                        if on_write_error is not None:
                            on_write_error(best_path.name, exc)
                return
            self.wait += 1
            if self.wait >= patience:
                self.stopped_early = True
                self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestEpoch()
