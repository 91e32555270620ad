"""A search's settings as one value: what it tries (strategy, folds, sample, seed, pruning) and
where its fits run (in this process, worker processes, a Dask cluster).

A tune task's options become one (``TaskSpec.search_options`` in ``core.runs.execute``); the
planner (``search.plan_search``), the search (``search.tune``) and the executor it runs on
(``executors.make_executor``) each read what they need from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchOptions:
    """How a search runs; the defaults are ``cnn-tui tune``'s."""

    strategy: str = "grid"  # grid | random | halving | hyperband | tpe
    cv: int = 3  # cross-validation folds
    n_iter: int = 10  # random: the combinations drawn; tpe: the combinations proposed
    max_samples: int = 10_000  # at most this many images are searched (a stratified subset)
    seed: int = 42  # the subset, the folds, the random draw and the initial weights
    prune: str = "none"  # none | median
    min_epochs: int = 1  # pruning never stops a fit before this many epochs
    jobs: int = 1  # fits at once in worker processes on this machine
    gpus: tuple[str, ...] = ()  # one GPU per worker process, round-robin
    cluster: str | None = None  # a Dask scheduler's address, or local:N
    security: str | None = None  # a Dask security (TLS) file for ``cluster``
    ensemble_top: int = 0  # keep the fold models of this many best combinations as one ensemble (0: none)
