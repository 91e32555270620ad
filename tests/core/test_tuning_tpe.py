"""--strategy tpe: Optuna's TPE sampler proposes the combinations (ask / tell), scored by the same
cross-validated trials; it is reproducible with the seed, prunes, resumes, and says which fields mattered."""

import math
import threading

import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.events import FoldEnd
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning.adaptive import field_importance
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import plan_search, tune

from tests_support import TINY_HYPER, class_ordered_set

# 2 x 2 x 2 = 8 combinations, 3 of them proposed
GRID = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "num_units": [8, 32], "num_filters": [4, 8],
                              "init_rate": [0.001, 0.05]})
TPE = SearchOptions(strategy="tpe", n_iter=3, cv=2, seed=7)


def combinations(rows):
    seen = []
    for row in rows:
        combo = (row["num_units"], row["num_filters"], row["init_rate"])
        if combo not in seen:
            seen.append(combo)
    return seen


def test_tpe_runs_n_iter_distinct_combinations_on_every_fold_and_is_reproducible():
    images = class_ordered_set(size=8)
    first = tune(images, GRID, TPE)
    assert first.status == "finished", first.message
    assert len(combinations(first.rows)) == 3 and len(first.rows) == 6  # 3 combinations x 2 folds
    assert sorted(r["fold"] for r in first.rows) == [1, 1, 1, 2, 2, 2]
    assert first.message == "3 of 8 combinations proposed by TPE x 2 folds done"
    assert all(r["status"] == "ok" and 0 <= r["accuracy"] <= 1 for r in first.rows)
    again = tune(images, GRID, TPE)
    assert combinations(again.rows) == combinations(first.rows)  # the same seed: the same proposals
    other = tune(images, GRID, SearchOptions(strategy="tpe", n_iter=3, cv=2, seed=8))
    assert len(combinations(other.rows)) == 3


def test_the_plan_announces_at_most_n_iter_proposals_of_the_grid():
    plan = plan_search(GRID, TPE, samples=36, classes=3)
    assert plan.strategy == "tpe" and len(plan.candidates) == 8 and plan.fits == 3 * 2
    capped = plan_search(GRID, SearchOptions(strategy="tpe", n_iter=50, cv=2), samples=36, classes=3)
    assert capped.fits == 8 * 2  # never more proposals than combinations
    with pytest.raises(ParamsError, match="unknown tuning strategy 'bayes'"):
        plan_search(GRID, SearchOptions(strategy="bayes"), samples=36, classes=3)


def test_a_stopped_tpe_search_resumes_without_refitting_its_finished_folds():
    images = class_ordered_set(size=8)
    stop = threading.Event()
    fits = []

    def stop_after_three(event):
        if isinstance(event, FoldEnd):
            fits.append(event.row)
            if len(fits) == 3:
                stop.set()

    stopped = tune(images, GRID, TPE, emit=stop_after_three, stop=stop)
    assert stopped.status == "stopped" and len(stopped.rows) == 3
    refitted = []

    def count(event):
        if isinstance(event, FoldEnd) and event.row["fit_seconds"] > 0 and event.row not in stopped.rows:
            refitted.append(event.row)

    resumed = tune(images, GRID, TPE, done_rows=stopped.rows, emit=count)
    assert resumed.status == "finished", resumed.message
    assert len(resumed.rows) == 6 and len(combinations(resumed.rows)) == 3
    assert combinations(resumed.rows)[:2] == combinations(stopped.rows)  # told again first, in order
    for row in stopped.rows:  # kept, not trained again: the same scores
        assert row in resumed.rows
    assert len(refitted) == 3


def test_median_pruning_reports_folds_to_optuna_and_keeps_the_search_going():
    images = class_ordered_set(size=8)
    result = tune(images, GRID, SearchOptions(strategy="tpe", n_iter=4, cv=3, seed=7, prune="median"))
    assert result.status == "finished", result.message
    assert len(combinations(result.rows)) == 4
    folds = {c: sum(1 for r in result.rows if (r["num_units"], r["num_filters"], r["init_rate"]) == c)
             for c in combinations(result.rows)}
    assert all(1 <= n <= 3 for n in folds.values())
    for combination in list(folds)[:2]:  # Optuna's pruner waits for two finished combinations (n_startup_trials):
        rows = [r for r in result.rows if (r["num_units"], r["num_filters"], r["init_rate"]) == combination]
        # one of the first two stops early only where the per-epoch pruning ended a fold (JAX's figures do that)
        assert len(rows) == 3 or rows[-1]["status"] != "ok", rows
    table = result.table()
    if any(row["folds"] == 3 for row in table):  # on JAX's figures the per-epoch pruning may leave none whole
        assert table[0]["folds"] == 3  # a pruned combination (fewer folds) never ranks above a whole one


def test_importance_says_which_field_mattered():
    table = [{"a": a, "b": b, "mean_accuracy": 0.5 + 0.4 * (a == 2) + 0.01 * (b == "x"), "folds": 3, "rung": 0}
             for a in (1, 2) for b in ("x", "y")]
    importance = field_importance(table, ["a", "b"], cv=3, seed=0)
    assert list(importance) == ["a", "b"] and importance["a"] > 0.6
    assert math.isclose(sum(importance.values()), 1.0)
    assert field_importance(table[:2], ["a", "b"], cv=3, seed=0) == {}  # fewer than 3 scored combinations
    assert field_importance([{**r, "folds": 1} for r in table], ["a", "b"], cv=3, seed=0) == {}  # incomplete
    assert field_importance([{**r, "mean_accuracy": 0.5} for r in table], ["a", "b"], cv=3, seed=0) == {}  # all equal


def test_a_tpe_search_reports_importance():
    # init_rate 0.001 barely trains in an epoch, 0.05 does: the scores differ, so something mattered
    result = tune(class_ordered_set(size=8), GRID, SearchOptions(strategy="tpe", n_iter=4, cv=2, seed=7))
    assert len({r["mean_accuracy"] for r in result.table()}) > 1
    assert set(result.importance) <= {"num_units", "num_filters", "init_rate"} and result.importance
    assert math.isclose(sum(result.importance.values()), 1.0, rel_tol=1e-6)
