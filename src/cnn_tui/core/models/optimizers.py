"""The optimizer, learning-rate schedule and loss a configuration trains with.

Only Keras's own classes are used, so a saved model holds nothing that safe-mode
loading would refuse (a custom schedule would be a custom object).
"""

from __future__ import annotations

from typing import Any

from cnn_tui.core.backend import load_keras

# Until training knows its batches per epoch, a cosine schedule assumes this many.
ASSUMED_STEPS_PER_EPOCH = 100


def learning_rate(config: Any, steps_per_epoch: int | None = None) -> Any:
    """A float for a constant rate (ReduceLROnPlateau can then change it), else a schedule."""
    keras = load_keras()
    schedules = keras.optimizers.schedules
    if config.schedule == "constant":
        return config.init_rate
    if config.schedule == "cosine":
        steps = steps_per_epoch or ASSUMED_STEPS_PER_EPOCH
        warmup = config.warmup_epochs * steps
        total = max(1, config.epochs * steps - warmup)
        if warmup:
            return schedules.CosineDecay(0.0, total, warmup_target=config.init_rate, warmup_steps=warmup)
        return schedules.CosineDecay(config.init_rate, total)
    return schedules.ExponentialDecay(config.init_rate, decay_steps=config.decay_steps, decay_rate=config.decay_rate)


def make_optimizer(config: Any, steps_per_epoch: int | None = None, *, rate_factor: float = 1.0) -> Any:
    keras = load_keras()
    rate = learning_rate(config.replace(init_rate=config.init_rate * rate_factor), steps_per_epoch)
    decay = config.weight_decay or None
    # ema: Keras keeps the moving average of the weights in the optimizer (saved with its state);
    # training.averaging swaps it into the model for validation, checkpoints and the end of a fit
    averaging = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay, **averaging)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay, **averaging)
    return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum, weight_decay=decay, **averaging)


def make_loss(config: Any) -> Any:
    """Sparse labels as the seed; label smoothing needs one-hot targets (``one_hot_targets``)."""
    keras = load_keras()
    if config.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    return "sparse_categorical_crossentropy"


def one_hot_targets(config: Any) -> bool:
    return bool(config.label_smoothing)


def compile_model(model: Any, config: Any, steps_per_epoch: int | None = None, *, rate_factor: float = 1.0) -> None:
    model.compile(optimizer=make_optimizer(config, steps_per_epoch, rate_factor=rate_factor), loss=make_loss(config),
                  metrics=["accuracy"])
