"""A stage of training a network in phases (a pretrained backbone: frozen, then fine-tuned)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phase:
    """Train up to ``last_epoch`` after ``set_trainable()``, with a fresh optimizer for ``config`` (its
    epochs and warm-up are the phase's own, so a cosine schedule spans the phase) at ``rate_factor``
    times its rate. Compiling is the trainer's: the registry builds networks and does not train them."""

    last_epoch: int
    set_trainable: Callable[[], None]
    config: Any
    rate_factor: float = 1.0
