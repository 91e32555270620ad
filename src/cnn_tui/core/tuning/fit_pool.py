"""One built, traced network reused by the fits of one configuration.

On a CPU, building a network and tracing its training, validation and prediction steps costs
about a second a fit whatever its epochs (docs/benchmarks.md): more than a small data set's
whole fit. The folds of one combination train the same network from the same initial weights
(the seed is the same), and a hyperband fit promoted to more epochs goes on training the
network it left. So a thread keeps the last network it built (a search runs its trials
combination by combination), and the networks a later hyperband round may train on (within
``CNN_TUI_KEPT_NETWORKS_MIB``), and for the next fit of the same configuration sets its variables
back instead of building it again; Keras keeps its traced functions as long as the model is not
compiled again.

A fit's state (every variable of the network, its seed generators' included, and of the
optimizer) is a list of arrays: the initial state is kept in memory, a state a promoted fit
goes on from is an ``.npz`` file (any process can read it; a ``.keras`` file would cost a
save of the whole model).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import backend
from cnn_tui.core.environment import env_int

STATE_SUFFIX = ".npz"


def _variables(model: Any) -> list[Any]:
    return [*model.variables, *model.optimizer.variables]


def capture(model: Any) -> list[np.ndarray]:
    """The state of a compiled model whose optimizer is built."""
    return [np.array(v.numpy(), copy=True) for v in _variables(model)]


def restore(model: Any, state: list[np.ndarray]) -> None:
    variables = _variables(model)
    if len(variables) != len(state):
        raise ValueError(f"the saved state has {len(state)} variables, the network {len(variables)}")
    for variable, value in zip(variables, state):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(f"variable {variable.path} is {tuple(variable.shape)}, the saved state {value.shape}")
        variable.assign(value)


def build_compiled_state(model: Any, *, one_hot: bool) -> None:
    """Build the compiled loss and metrics of a freshly compiled ``model`` from a batch of zeros.
    Otherwise Keras builds them in the model's first ``fit`` from a batch it draws from the shuffled
    data, and on JAX that draw takes a numpy permutation: a new network's fit would train on the
    second shuffle and a reused one's (built already) on the first, and the two fits would differ.
    ``one_hot``: the targets are one-hot rows (label smoothing), not class indices."""
    classes = int(model.output_shape[-1])
    x = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    y = np.zeros((1, classes), dtype="float32") if one_hot else np.zeros((1,), dtype="int32")
    model._symbolic_build(data_batch=(x, y))  # Keras's own step (what fit would run), with no draw


def save_state(model: Any, path: Path) -> Path:
    path = Path(path).with_suffix(STATE_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # an open file: np.savez would add .npz to a name without it
        np.savez(handle, *capture(model))
    return path


def load_state(model: Any, path: str | Path) -> None:
    with np.load(path, allow_pickle=False) as saved:
        restore(model, [saved[f"arr_{i}"] for i in range(len(saved.files))])


@dataclass
class _Network:
    model: Any
    initial: list[np.ndarray]
    mib: float
    kept: bool  # a later round may go on training it (hyperband): not dropped for the next network


class FitPool:
    """The networks built in this thread, by the key of their configuration: the last one, and
    those a later round may go on training, within ``budget_mib`` (least recently used go first)."""

    def __init__(self, budget_mib: float | None = None) -> None:
        self.networks: OrderedDict[str, _Network] = OrderedDict()
        self.budget_mib = budget_mib if budget_mib is not None else env_int("CNN_TUI_KEPT_NETWORKS_MIB", 512, low=0)
        self.builds = 0
        self.reuses = 0
        self.search: str | None = None

    def serve(self, search: str) -> None:
        """A long-lived worker (a Dask worker serves one search after another) keeps no network of
        an earlier search: its kept ones would hold memory no later fit asks for."""
        if search != self.search:
            self.clear()
            self.search = search

    @property
    def key(self) -> str | None:
        return next(reversed(self.networks), None)

    @property
    def model(self) -> Any:
        return self.networks[self.key].model if self.networks else None

    def take(self, key: str, build: Callable[[], Any], seed: int, *, keep: bool = False) -> Any:
        """The network for ``key`` in its initial state: a kept one set back, or a new one
        (``build`` returns it compiled; its optimizer is built here so its state is complete).
        The random state is seeded afterwards either way, so a fit goes the same on both.
        ``keep``: a later round may go on training this network."""
        network = self.networks.get(key)
        if network is not None:
            self.networks.move_to_end(key)
            restore(network.model, network.initial)
            network.kept = network.kept or keep
            self.reuses += 1
        else:
            for old in [k for k, n in self.networks.items() if not n.kept]:
                del self.networks[old]
            backend.clear_session()  # a fresh Keras state (layer names, graphs) for every new network
            backend.set_seed(seed)
            model = build()
            model.optimizer.build(model.trainable_variables)
            initial = capture(model)
            network = _Network(model, initial, sum(a.nbytes for a in initial) * 2 / 2**20, keep)  # + the live copy
            self.networks[key] = network
            self.builds += 1
            while len(self.networks) > 1 and sum(n.mib for n in self.networks.values()) > self.budget_mib:
                self.networks.popitem(last=False)
        backend.set_seed(seed)
        return network.model

    def clear(self) -> None:
        self.networks.clear()


_LOCAL = threading.local()


def pool() -> FitPool:
    """This thread's pool: a Dask worker with several threads runs several fits at once, and a
    network must never be set back while another fit trains it."""
    if not hasattr(_LOCAL, "pool"):
        _LOCAL.pool = FitPool()
    return _LOCAL.pool
