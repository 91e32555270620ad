"""The optimizer, learning-rate schedule and loss a configuration trains with.

Only Keras's own classes are used, so a saved model holds nothing that safe-mode
loading would refuse (a custom schedule would be a custom object).
"""

from __future__ import annotations

from typing import Any

from cnn_tui.core.backend import load_keras
from cnn_tui.core.models.augmentation import mixes_labels

# Until training knows its batches per epoch, a cosine schedule assumes this many.
ASSUMED_STEPS_PER_EPOCH = 100
# one_cycle starts at init_rate / ONE_CYCLE_DIV and ends at init_rate * ONE_CYCLE_END (fastai's
# fit_one_cycle: div 25, and a final rate 1e5 times lower than its start)
ONE_CYCLE_DIV = 25.0
ONE_CYCLE_END = 1.0 / (ONE_CYCLE_DIV * 1e5)


def learning_rate(config: Any, steps_per_epoch: int | None = None, step_scale: float = 1.0) -> Any:
    """A float for a constant rate (ReduceLROnPlateau can then change it), else a schedule.
    ``step_scale``: optimizer steps per step of the configured batch (gradient accumulation counts
    every accumulated batch a step, see ``make_optimizer``); the epoch-based schedules get it
    through ``steps_per_epoch`` (the accumulated batches an epoch), the exponential one here."""
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
    if config.schedule == "one_cycle":
        return one_cycle(config, steps_per_epoch)
    return schedules.ExponentialDecay(config.init_rate, decay_steps=config.decay_steps * step_scale,
                                      decay_rate=config.decay_rate)


def one_cycle(config: Any, steps_per_epoch: int | None = None) -> Any:
    """Smith's 1cycle as Keras's own ``CosineDecay`` with a warm-up: a linear rise from
    init_rate / 25 to init_rate over ``warmup_fraction`` of all steps, then a cosine down to about 0.
    A built-in schedule keeps the model file loadable in safe mode (no custom object) and resumes
    like the others: its step is the optimizer's ``iterations``, saved with the model."""
    keras = load_keras()
    total = max(2, config.epochs * (steps_per_epoch or ASSUMED_STEPS_PER_EPOCH))
    warmup = min(total - 1, round(config.warmup_fraction * total))
    start = config.init_rate / ONE_CYCLE_DIV
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(config.init_rate, total, alpha=ONE_CYCLE_END)
    return keras.optimizers.schedules.CosineDecay(start, total - warmup, alpha=ONE_CYCLE_END,
                                                  warmup_target=config.init_rate, warmup_steps=warmup)


def make_optimizer(config: Any, steps_per_epoch: int | None = None, *, rate_factor: float = 1.0,
                   rate: Any = None, accumulation: int = 1, step_scale: float = 1.0) -> Any:
    """The configured optimizer; ``rate`` (a schedule, e.g. the rate finder's sweep) replaces the
    configuration's rate and schedule. ``accumulation`` > 1: Keras's gradient accumulation, one
    update per that many batches (a fit retried at a smaller batch after running out of memory,
    ``training.fit``). Keras's schedules then read every batch as a step (its ``_iterations``), so
    ``steps_per_epoch`` counts the small batches and ``step_scale`` is small batches per configured one."""
    keras = load_keras()
    if rate is None:
        rate = learning_rate(config.replace(init_rate=config.init_rate * rate_factor), steps_per_epoch, step_scale)
    decay = config.weight_decay or None
    # ema: Keras keeps the moving average of the weights in the optimizer (saved with its state);
    # training.averaging swaps it into the model for validation, checkpoints and the end of a fit.
    # With accumulation Keras averages at every batch, the weights changing every ``accumulation``:
    # momentum ** (1 / accumulation) per batch is momentum per update, as without it.
    averaging = {"use_ema": True, "ema_momentum": config.ema ** (1 / accumulation)} if config.ema else {}
    if accumulation > 1:
        averaging["gradient_accumulation_steps"] = accumulation
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, weight_decay=decay, **averaging)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay, **averaging)
    return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum, weight_decay=decay, **averaging)


def make_loss(config: Any) -> Any:
    """Sparse labels as the seed; label smoothing and mixed labels (MixUp, CutMix) need one-hot
    targets (``one_hot_targets``)."""
    keras = load_keras()
    if one_hot_targets(config):
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    return "sparse_categorical_crossentropy"


def one_hot_targets(config: Any) -> bool:
    return bool(config.label_smoothing) or mixes_labels(config)


def compile_model(model: Any, config: Any, steps_per_epoch: int | None = None, *, rate_factor: float = 1.0,
                  accumulation: int = 1, step_scale: float = 1.0) -> None:
    optimizer = make_optimizer(config, steps_per_epoch, rate_factor=rate_factor, accumulation=accumulation,
                               step_scale=step_scale)
    model.compile(optimizer=optimizer, loss=make_loss(config), metrics=["accuracy"])
