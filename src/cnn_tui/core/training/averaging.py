"""Weight averaging (``ema``): the model validated, checkpointed, kept and saved is the exponential
moving average of the weights, while training goes on with the weights it trains.

Keras keeps the average in the optimizer (``use_ema=True``, see ``models.optimizers``) and ships
``keras.callbacks.SwapEMAWeights``: with ``swap_on_epoch`` it swaps the average into the model
for validation and from the end of an epoch to the start of the next, so every callback that
runs at an epoch's end (the checkpoint, early stopping's best weights) sees the averaged model.
Two things it leaves to us, done here:

- a fit that ends before its last epoch (a stop, early stopping, divergence) ends with the
  average in the model and the trained weights in the optimizer's average slots, and Keras's
  ``finalize_variable_values`` would then copy the trained weights over the model; ``EndOfFit``
  (the last callback of an epoch, after every stop decision) copies the average into those slots
  first, so the model keeps the average;
- a file saved at an epoch's end therefore holds the average as the model's weights and the
  trained weights in the average slots: ``training_weights_back`` swaps them back when a run
  resumes, so it trains on from its own weights and keeps averaging.
"""

from __future__ import annotations

from typing import Any

from cnn_tui.core.backend import load_keras


def averaging_callbacks(config: Any) -> tuple[list[Any], list[Any]]:
    """(first, last): the callbacks that must run before all others at an epoch's end, and the one
    that must run after them; both empty when the configuration does not average."""
    if not getattr(config, "ema", 0):
        return [], []
    swap = _swap_callback()
    return [swap], [_end_of_fit(swap)]


def _swap_callback() -> Any:
    keras = load_keras()

    class SwapAverage(keras.callbacks.SwapEMAWeights):
        def on_train_begin(self, logs: dict | None = None) -> None:
            # a fit starts with the trained weights in the model (the last fit's end made them the
            # average, and a new stage compiles a new optimizer): nothing is swapped yet
            self._ema_weights_in_model = False

    return SwapAverage(swap_on_epoch=True)


def _end_of_fit(swap: Any) -> Any:
    keras = load_keras()

    class EndOfFit(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.model.stop_training and swap._ema_weights_in_model:
                swap._finalize_ema_values()  # the fit ends here: the average stays the model's

    return EndOfFit()


def training_weights_back(model: Any) -> bool:
    """After loading a file saved at an epoch's end to resume: put the trained weights back in the
    model and the average back in the optimizer. True when there was an average to swap."""
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a mixed-precision loss scaler wraps it
    if not getattr(inner, "use_ema", False) or not getattr(inner, "built", False):
        return False
    if not hasattr(inner, "_model_variables_moving_average"):
        return False
    swap = load_keras().callbacks.SwapEMAWeights()
    swap.set_model(model)
    swap._swap_variables()
    return True
