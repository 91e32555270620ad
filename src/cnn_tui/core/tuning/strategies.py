"""Search strategies: which trials to run, round by round (KerasTuner's "oracle").

scikit-learn proposes the combinations (``ParameterGrid``, ``ParameterSampler``) and the
folds (``StratifiedKFold``); a strategy turns them into rounds of ``TrialSpec`` and, after
each round, decides which combinations go on:

- ``grid`` and ``random``: one round, every combination on every fold, all epochs.
- ``halving``: successive halving over images (as scikit-learn's ``HalvingGridSearchCV``
  with ``min_resources="exhaust"``): every combination on a small stratified share of the
  images, the best third on three times as many, and so on up to all of them.
- ``hyperband``: successive halving over epochs (one Hyperband bracket, as in ASHA):
  every combination trains a few epochs, the best third goes on training (from where it
  stopped, optimizer state included) to three times as many, up to the planned epochs.
- ``tpe``: Optuna's TPE sampler proposes ``n_iter`` combinations of the grid one after another,
  learning from the scores of the ones tried (``core.tuning.adaptive``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_tui.core.errors import DatasetError, ParamsError
from cnn_tui.core.training.tensorboard_logs import fit_log_dir
from cnn_tui.core.tuning.trials import Trial, TrialSpec, split_key, trial_key

STRATEGIES = ("grid", "random", "halving", "hyperband", "tpe")
FACTOR = 3  # halving and hyperband keep the best third each round

Rounds = Generator[list[TrialSpec], list[Trial], None]


@dataclass
class SearchSpace:
    """The combinations, the configuration they modify, and the images' labels."""

    candidates: list[dict[str, Any]]
    base: dict[str, Any]  # the first-value configuration (ModelConfig.as_dict())
    y: np.ndarray
    cv: int
    seed: int
    prune: bool = False
    min_epochs: int = 1
    log_dir: str | None = None  # TensorBoard: each trial's epochs under a folder of its own
    groups: np.ndarray | None = None  # each image's group (a patient): no group is on both sides of a fold
    n_iter: int = 10  # tpe: the combinations proposed
    replay: list[dict[str, Any]] = field(default_factory=list)  # tpe: the combinations a stopped search tried
    save_folds: bool = False  # --ensemble: every finished fit saves its model (``TrialSpec.save_fold``)

    def config(self, candidate: dict[str, Any]) -> dict[str, Any]:
        return {**self.base, **candidate}

    def folds(self, rows: np.ndarray, seed_offset: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold  # noqa: PLC0415 — scikit-learn: seconds to import

        # shuffled explicitly: the images arrive ordered by class
        if self.groups is not None:
            groups = self.groups[rows].astype(str)
            if len(set(groups.tolist())) < self.cv:
                raise DatasetError(f"{self.cv}-fold cross-validation by groups needs at least {self.cv} groups; "
                                   f"the images hold {len(set(groups.tolist()))}")
            grouped = StratifiedGroupKFold(n_splits=self.cv, shuffle=True, random_state=self.seed + seed_offset)
            return [(rows[a], rows[b]) for a, b in grouped.split(rows.reshape(-1, 1), self.y[rows], groups)]
        splitter = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.seed + seed_offset)
        return [(rows[a], rows[b]) for a, b in splitter.split(rows.reshape(-1, 1), self.y[rows])]

    def spec(self, index: int, fold: int, rung: int, train: np.ndarray, test: np.ndarray, epochs: int,
             **extra: Any) -> TrialSpec:
        candidate = self.candidates[index]
        return TrialSpec(key=trial_key(rung, index, fold), params=dict(candidate), config=self.config(candidate),
                         fold=fold, rung=rung, train_rows=train, test_rows=test, split=split_key(train),
                         epochs=epochs, prune_after={} if self.prune else None, min_epochs=self.min_epochs,
                         seed=self.seed, log_dir=self._log_dir(candidate, fold, rung), save_fold=self.save_folds,
                         **extra)

    def _log_dir(self, candidate: dict[str, Any], fold: int, rung: int) -> str | None:
        if self.log_dir is None:
            return None
        folder = fit_log_dir(self.log_dir, candidate, fold)
        return str(folder.with_name(f"{folder.name}-round{rung + 1}") if rung else folder)


def candidates_for(grid: dict[str, list[Any]], strategy: str, n_iter: int, seed: int) -> list[dict[str, Any]]:
    from sklearn.model_selection import ParameterGrid, ParameterSampler  # noqa: PLC0415 — scikit-learn: seconds to import

    if strategy not in STRATEGIES:
        raise ParamsError(f"unknown tuning strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy == "random":
        count = min(n_iter, math.prod(len(v) for v in grid.values()))
        # ParameterSampler draws indices into the grid and builds only those combinations
        return [dict(c) for c in ParameterSampler(grid, count, random_state=seed)] if grid else [{}]
    return [dict(c) for c in ParameterGrid(grid)]


def ranking(trials: list[Trial], count: int) -> list[int]:
    """Candidate indices, best mean held-out accuracy first (over their finished folds)."""
    scores: dict[int, list[float]] = {}
    for trial in trials:
        index = int(trial.spec.key.split("-c")[1].split("-")[0])
        scores.setdefault(index, [])
        if trial.ok and not math.isnan(trial.accuracy):
            scores[index].append(trial.accuracy)
    mean = {i: (float(np.mean(s)) if s else -1.0) for i, s in scores.items()}
    return sorted(range(count), key=lambda i: (-mean.get(i, -1.0), i))


def grid_rounds(space: SearchSpace) -> Rounds:
    rows = np.arange(len(space.y))
    folds = space.folds(rows)
    yield [space.spec(i, f + 1, 0, train, test, int(space.config(c)["epochs"]))
           for i, c in enumerate(space.candidates) for f, (train, test) in enumerate(folds)]


def halving_plan(candidates: int, samples: int, cv: int, classes: int) -> list[tuple[int, int]]:
    """(combinations, images) of each round: fewer rounds than the combinations would need
    when there are few images (12 images and 9 combinations: one round of 9)."""
    required = 1 + math.floor(math.log(candidates, FACTOR)) if candidates > 1 else 1
    smallest = max(cv * 2 * classes, samples // FACTOR ** (required - 1))
    if smallest > samples:
        return [(candidates, samples)]
    possible = 1 + math.floor(math.log(samples // smallest, FACTOR))
    rounds, alive = [], candidates
    for i in range(min(possible, required)):
        rounds.append((alive, min(int(FACTOR**i * smallest), samples)))
        alive = math.ceil(alive / FACTOR)
    return rounds


def halving_rounds(space: SearchSpace) -> Rounds:
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 — scikit-learn: seconds to import

    n = len(space.y)
    plan = halving_plan(len(space.candidates), n, space.cv, int(space.y.max()) + 1)
    alive = list(range(len(space.candidates)))
    for rung, (count, images) in enumerate(plan):
        alive = alive[:count]
        rows = np.arange(n)
        if images < n:  # a stratified share of the images, drawn anew each round
            rows, _ = train_test_split(rows, train_size=images, stratify=space.y, random_state=space.seed + rung)
            rows = np.sort(rows)
        folds = space.folds(rows, rung)
        trials = yield [space.spec(i, f + 1, rung, train, test, int(space.config(space.candidates[i])["epochs"]))
                        for i in alive for f, (train, test) in enumerate(folds)]
        alive = [i for i in ranking(trials or [], len(space.candidates)) if i in alive]


def hyperband_plan(candidates: int, epochs: int) -> list[tuple[int, int]]:
    """(combinations, epochs) of each rung: every combination a few epochs, the best third
    three times as many, ... the last rung trains the planned ``epochs``."""
    rungs = 1 + max(0, min(math.floor(math.log(max(epochs, 1), FACTOR)),
                           math.floor(math.log(max(candidates, 1), FACTOR))))
    plan = []
    for rung in range(rungs):
        alive = max(1, math.ceil(candidates / FACTOR**rung))
        plan.append((alive, max(1, math.ceil(epochs / FACTOR ** (rungs - 1 - rung)))))
    return plan


def hyperband_rounds(space: SearchSpace) -> Rounds:
    rows = np.arange(len(space.y))
    folds = space.folds(rows)
    most = max(int(space.config(c)["epochs"]) for c in space.candidates)
    plan = hyperband_plan(len(space.candidates), most)
    alive = list(range(len(space.candidates)))
    previous: dict[str, Trial] = {}
    for rung, (count, epochs) in enumerate(plan):
        alive = alive[:count]
        last = rung == len(plan) - 1
        specs = []
        for i in alive:
            own = int(space.config(space.candidates[i])["epochs"])  # epochs may be tuned: scale each
            target = own if last else max(1, math.ceil(own * epochs / most))
            for f, (train, test) in enumerate(folds):
                before = previous.get(f"c{i}-f{f + 1}")
                go_on = before is not None and before.model_file and before.epochs_done < target
                specs.append(space.spec(i, f + 1, rung, train, test, target, keep_model=not last,
                                        initial_epoch=before.epochs_done if go_on else 0,
                                        start_model=before.model_file if go_on else None))
        trials = yield specs
        for trial in trials or []:
            previous[trial.spec.key.split("-", 1)[1]] = trial
        alive = [i for i in ranking(trials or [], len(space.candidates)) if i in alive]


def rounds_for(strategy: str, space: SearchSpace) -> Rounds:
    return {"grid": grid_rounds, "random": grid_rounds, "halving": halving_rounds,
            "hyperband": hyperband_rounds}[strategy](space)


def estimate(strategy: str, space: SearchSpace) -> tuple[int, int]:
    """(fits, epoch-images) a search plans: the images trained on, summed over fits and epochs
    (batches depend on each candidate's batch size; the caller turns images into batches)."""
    n, cv = len(space.y), space.cv
    train_share = (cv - 1) / cv
    epochs = [int(space.config(c)["epochs"]) for c in space.candidates]
    if strategy == "tpe":  # at most n_iter proposals; which ones is learnt: the grid's mean epochs
        count = min(space.n_iter, len(epochs))
        return count * cv, int(float(np.mean(epochs)) * count * n * train_share * cv)
    if strategy in ("grid", "random"):
        return len(epochs) * cv, int(sum(e * n * train_share for e in epochs) * cv)
    if strategy == "halving":
        plan = halving_plan(len(epochs), n, cv, int(space.y.max()) + 1)
        return (sum(alive * cv for alive, _ in plan),
                int(sum(sum(epochs[:alive]) * images * train_share * cv for alive, images in plan)))
    plan = hyperband_plan(len(epochs), max(epochs))
    fits, work, before = 0, 0.0, 0
    for alive, rung_epochs in plan:
        fits += alive * cv
        work += alive * cv * (rung_epochs - before) * n * train_share  # promoted fits go on, not again
        before = rung_epochs
    return fits, int(work)


def candidate_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
