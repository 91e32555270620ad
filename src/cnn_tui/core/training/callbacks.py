"""The one place the Keras callbacks of a fit are chosen, for ``train`` and for tuning fits.

Besides the caller's progress callback: early stopping that keeps the best epoch
(``patience``) and reduce-on-plateau (``reduce_on_plateau``), both watching the
validation loss when there is a validation set and the training loss otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cnn_tui.core.backend import load_keras
from cnn_tui.core.training import tensorboard_logs

PLATEAU_FACTOR = 0.5
MIN_DELTA = 1e-4  # a loss must improve by more than this to count as better


def monitor_for(validation: bool) -> str:
    return "val_loss" if validation else "loss"


def training_callbacks(config: Any, *, validation: bool, progress: Any = None, log_dir: Path | None = None) -> list[Any]:
    """The callbacks of one fit, in the order they must run: progress (it counts the epoch and
    checkpoints it) before the callbacks that may stop training or restore weights."""
    keras = load_keras()
    monitor = monitor_for(validation)
    callbacks: list[Any] = [progress] if progress is not None else []
    if log_dir is not None and tensorboard_logs.available():  # the epoch figures as TensorBoard event files
        callbacks.append(tensorboard_logs.epoch_callback(log_dir))
    if config.reduce_on_plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=PLATEAU_FACTOR,
                                                           patience=config.reduce_on_plateau, min_delta=MIN_DELTA))
    if config.patience:
        callbacks.append(best_epoch_callback(monitor, config.patience))
    return callbacks


def best_epoch(callbacks: list[Any]) -> int | None:
    """The 1-based best epoch an early-stopping callback kept, if there was one."""
    for callback in callbacks:
        if getattr(callback, "is_best_epoch", False):
            return callback.best_epoch
    return None


def best_epoch_callback(monitor: str, patience: int) -> Any:
    """Early stopping that always ends with the best epoch's weights: Keras's own
    ``EarlyStopping(restore_best_weights=True)`` restores them only when it stops training
    early, so a run that used all its epochs would keep the last epoch's."""
    keras = load_keras()

    class BestEpoch(keras.callbacks.Callback):
        is_best_epoch = True

        def __init__(self) -> None:
            super().__init__()
            self.best = math.inf
            self.best_epoch: int | None = None
            self.best_weights: list[Any] | None = None
            self.wait = 0
            self.stopped_early = False

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not math.isfinite(float(value)):
                return
            if float(value) < self.best - MIN_DELTA:
                self.best, self.best_epoch, self.wait = float(value), epoch + 1, 0
                self.best_weights = self.model.get_weights()
                return
            self.wait += 1
            if self.wait >= patience:
                self.stopped_early = True
                self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return BestEpoch()
