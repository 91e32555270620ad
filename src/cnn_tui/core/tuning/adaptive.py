"""A search that learns: Optuna's TPE sampler proposes the combinations, one after another, from
the scores of the ones already tried (ask / tell), over the same list-valued fields as the grid.

Each proposal is one combination of the grid (``SearchSpace.candidates``), cross-validated on the
same stratified folds by the same trials as every other strategy; its mean held-out accuracy is told
back to the study. With pruning, the folds of a combination run one after another and Optuna's
``MedianPruner`` drops a combination whose running mean over its folds falls below the median of the
combinations before it at that fold. A resumed search tells a fresh study the combinations a stopped
one tried (enqueued, in the order they ran; their finished folds are not trained again) and goes on.
After the search, ``field_importance`` says which fields mattered (Optuna's fANOVA evaluator).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from cnn_tui.core.tuning.strategies import Rounds, SearchSpace, candidate_key

MIN_SCORED = 3  # combinations scored on every fold before importance means anything
MAX_REPEATS = 50  # a sampler proposing only tried combinations is given an untried one instead


def _choice(value: Any) -> Any:
    """A field's value as an Optuna categorical choice (None, bool, int, float or str)."""
    return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value, sort_keys=True)


def distributions(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[Any, Any]]]:
    """Each tuned field as a categorical distribution, and each choice back to the field's value."""
    from optuna.distributions import CategoricalDistribution  # noqa: PLC0415 — Optuna: a second to import

    values: dict[str, dict[Any, Any]] = {}
    for candidate in candidates:
        for name, value in candidate.items():
            values.setdefault(name, {}).setdefault(_choice(value), value)
    return {name: CategoricalDistribution(list(choices)) for name, choices in values.items()}, values


def startup_trials(n_iter: int) -> int:
    """Proposals drawn at random before the model of the scores is used: Optuna's 10, fewer on a small
    budget (20 trials: 6 at random, then 14 that learn), at least 2."""
    return max(2, min(10, n_iter // 3))


def tpe_rounds(space: SearchSpace) -> Rounds:
    import optuna  # noqa: PLC0415 — Optuna: a second to import, only for this strategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = min(space.n_iter, len(space.candidates))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if space.prune \
        else optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=space.seed,
                                                                   n_startup_trials=startup_trials(budget)))
    dists, values = distributions(space.candidates)
    index = {candidate_key(c): i for i, c in enumerate(space.candidates)}
    for params in space.replay:  # a resumed search: what the stopped one tried, told again first
        if candidate_key(params) in index:
            study.enqueue_trial({k: _choice(v) for k, v in params.items()}, skip_if_exists=True)
    folds = space.folds(np.arange(len(space.y)))
    told: dict[int, float | None] = {}  # combination -> its value (None: pruned or failed)
    repeats = 0
    while len(told) < budget:
        trial = study.ask(dists)
        i = index[candidate_key({k: values[k][trial.params[k]] for k in dists})]
        if i in told:  # proposed again: told what it scored, not trained again
            repeats += 1
            _tell(study, trial, told[i])
            if repeats >= MAX_REPEATS:
                untried = next(j for j in range(len(space.candidates)) if j not in told)
                study.enqueue_trial({k: _choice(v) for k, v in space.candidates[untried].items()})
                repeats = 0
            continue
        repeats = 0
        epochs = int(space.config(space.candidates[i])["epochs"])
        specs = [space.spec(i, f + 1, 0, train, test, epochs) for f, (train, test) in enumerate(folds)]
        scores: list[float] = []
        value: float | None = None
        if space.prune:  # fold by fold: each fold's running mean is an intermediate value
            for step, spec in enumerate(specs, start=1):
                ended = yield [spec]
                scores += [t.accuracy for t in ended or [] if t.ok and not math.isnan(t.accuracy)]
                if len(scores) < step:
                    break  # the fold was pruned by epoch or failed: the combination is incomplete
                trial.report(float(np.mean(scores)), step)
                if trial.should_prune():
                    break
            else:
                value = float(np.mean(scores))
        else:
            ended = yield specs
            scores = [t.accuracy for t in ended or [] if t.ok and not math.isnan(t.accuracy)]
            value = float(np.mean(scores)) if len(scores) == len(specs) else None
        told[i] = value
        _tell(study, trial, value, pruned=space.prune)


def _tell(study: Any, trial: Any, value: float | None, pruned: bool = False) -> None:
    from optuna.trial import TrialState  # noqa: PLC0415 — Optuna: imported with the study

    if value is not None:
        study.tell(trial, value)
    else:
        study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)


def field_importance(table: list[dict[str, Any]], columns: list[str], cv: int, seed: int) -> dict[str, float]:
    """Which tuned fields mattered, from any search's summary table (``search.summarize``): each field's
    share of the variation in the mean accuracy of the combinations scored on every fold of the last
    round (Optuna's fANOVA evaluator, seeded; its own random forest, no scikit-learn), most important
    first. {} with fewer than ``MIN_SCORED`` such combinations, no field that varies among them, or
    one score for all."""
    import optuna  # noqa: PLC0415 — Optuna: a second to import

    if not table or not columns:
        return {}
    top = max(int(r.get("rung") or 0) for r in table)
    scored = [r for r in table if r["folds"] >= cv and int(r.get("rung") or 0) == top
              and not math.isnan(r["mean_accuracy"])]
    if len(scored) < MIN_SCORED:
        return {}
    dists, _ = distributions([{c: r[c] for c in columns} for r in table])
    varied = [c for c in columns if len({_choice(r[c]) for r in scored}) > 1]
    if not varied or len({r["mean_accuracy"] for r in scored}) < 2:  # every combination scored the same: nothing mattered
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params={c: _choice(r[c]) for c in columns}, distributions=dists,
                                                value=float(r["mean_accuracy"])) for r in scored])
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed), params=varied)
    except (ValueError, RuntimeError):  # e.g. a forest of one leaf each
        try:
            found = optuna.importance.get_param_importances(study, params=varied)  # Optuna's default evaluator
        except (ValueError, RuntimeError):
            return {}
    return {name: float(share) for name, share in found.items()}
