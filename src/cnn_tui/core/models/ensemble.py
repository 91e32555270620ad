"""Fold ensembles: several models of the same classes and input as one ``.keras`` model whose output
is the mean of its members' probabilities.

The ensemble is a plain functional Keras model (the members as nested models, each followed by its
own temperature when it has one, then Keras's ``Average`` layer), built only from Keras's own layers
and ops, so it saves, loads in safe mode, evaluates, classifies, takes test-time augmentation and
exports like any model cnn-tui wrote. Its own temperature is 1.0: each member's is inside the graph.
Its metadata is the first member's (class names, size, channels, hyper params) plus a record of the
members.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnn_tui.core.backend import load_keras
from cnn_tui.core.errors import ModelError, UserError
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.models.temperature import TINY

MIN_MEMBERS = 2


def check_alike(members: Sequence[NetModel]) -> None:
    """Refuse members that do not classify the same classes from the same input, naming the file
    that differs from the first member (one line)."""
    first = members[0]
    for net in members[1:]:
        what = None
        if net.class_names != first.class_names:
            what = f"its classes ({', '.join(net.class_names)}) differ from {_name(first)}'s ({', '.join(first.class_names)})"
        elif (net.image_size, net.channels) != (first.image_size, first.channels):
            what = (f"its input ({net.image_size}x{net.image_size}, {net.channels} channel(s)) differs from "
                    f"{_name(first)}'s ({first.image_size}x{first.image_size}, {first.channels} channel(s))")
        if what is not None:
            raise ModelError(f"cannot be ensembled: {what}", path=net.source)


def _name(net: NetModel) -> str:
    return net.source.name if net.source is not None else "the first member"


def _calibrated(keras: Any, output: Any, temperature: float, index: int) -> Any:
    """softmax(log p / T) of a member's output, from Keras's own layers and ops (nothing custom, so
    the file loads in safe mode); the output itself when T = 1."""
    if temperature == 1.0:
        return output
    logits = keras.ops.log(keras.ops.clip(keras.ops.cast(output, "float32"), TINY, 1.0))
    scaled = keras.layers.Rescaling(1.0 / temperature, name=f"member_{index}_temperature")(logits)
    return keras.layers.Softmax(name=f"member_{index}_softmax")(scaled)


def average(members: Sequence[NetModel], *, labels: Sequence[str] | None = None) -> NetModel:
    """One model whose output is the mean of ``members``' probabilities (each member's temperature
    applied first). ``labels``: what each member's record calls it (default: its file's name)."""
    if len(members) < MIN_MEMBERS:
        raise UserError(f"an ensemble needs at least {MIN_MEMBERS} models (got {len(members)})")
    check_alike(members)
    keras = load_keras()
    first = members[0]
    inputs = keras.Input(shape=(first.image_size, first.image_size, first.channels), name="image")
    outputs = []
    for i, net in enumerate(members, start=1):
        net.keras_model.name = f"member_{i}"  # the members' own names may clash (every seed CNN is 'sequential')
        outputs.append(_calibrated(keras, net.keras_model(inputs), net.temperature, i))
    mean = keras.layers.Average(name="mean_probability")(outputs)
    model = keras.Model(inputs, mean, name="ensemble")
    names = list(labels) if labels is not None else [
        net.source.name if net.source is not None else f"member {i}" for i, net in enumerate(members, start=1)]
    record = [{"model": name, "temperature": net.temperature,
               "architecture": net.config.architecture if net.config is not None else None}
              for name, net in zip(names, members)]
    return NetModel(model, list(first.class_names), first.image_size, first.channels, first.config,
                    names_known=first.names_known, temperature=1.0, members=record)


def ensemble_files(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> NetModel:
    """Load ``paths``, check them alike, and save their average as ``out`` (a .keras file)."""
    out = Path(out)
    if out.suffix != ".keras":
        raise ModelError("the ensemble must be saved as a .keras file", path=out)
    members = [NetModel.load(path) for path in paths]
    net = average(members, labels=[str(path) for path in paths])
    net.save(out)
    net.source = out
    return net
