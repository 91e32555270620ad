"""Strategies (hyperband, halving), pruning, and the executors that run a search's trials."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune
from cnn_tui.core.tuning.strategies import hyperband_plan
from cnn_tui.core.tuning.trials import Pruning, Trial, run_trial
from tests.tests_support import check_hyperband_of_three, class_ordered_set, in_run_processes

TINY = {"num_filters": 2, "num_units": 4, "kernel_size": 3, "batch_size": 8, "init_rate": 0.02, "epochs": 1}


class ScriptedExecutor:
    """Runs no network: each trial 'scores' what ``score(params, epochs)`` says."""

    name = "scripted"

    def __init__(self, score):
        self.score = score
        self.runs = []

    def start(self, x, y, work_dir):
        pass

    def run(self, specs, on_trial, prepare):
        for spec in specs:
            spec = prepare(spec)
            self.runs.append(spec)
            on_trial(Trial(spec, "finished", spec.epochs, self.score(spec.params, spec.epochs), 0.5, 0.01,
                           model_file=f"/nowhere/{spec.key}.keras" if spec.keep_model else None))

    def close(self):
        pass


def test_hyperband_plans_rungs_of_a_third():
    assert hyperband_plan(16, 9) == [(16, 1), (6, 3), (2, 9)]
    assert hyperband_plan(27, 27) == [(27, 1), (9, 3), (3, 9), (1, 27)]
    assert hyperband_plan(2, 9) == [(2, 9)]  # too few combinations to drop any: one round, every epoch


def test_hyperband_promotes_the_best_third_and_trains_them_on():
    hyper = HyperParams.from_dict({**TINY, "num_units": list(range(1, 17)), "epochs": 9})
    executor = ScriptedExecutor(lambda params, epochs: params["num_units"] / 100)  # more units score better
    result = tune(class_ordered_set(classes=2, per_class=9, size=8), hyper, SearchOptions(strategy="hyperband", cv=3),
                  executor=executor)
    assert result.status == "finished", result.message
    by_rung = {}
    for spec in executor.runs:
        by_rung.setdefault(spec.rung, set()).add(spec.params["num_units"])
    assert by_rung == {0: set(range(1, 17)), 1: set(range(11, 17)), 2: {15, 16}}
    last = [s for s in executor.runs if s.rung == 2]
    assert {(s.epochs, s.initial_epoch) for s in last} == {(9, 3)}  # they go on from round 2's epoch 3
    assert all(s.start_model and s.start_model.endswith(f"r1-c{s.key.split('-c')[1]}.keras") for s in last)
    assert result.best() == {"num_units": 16}
    assert [r["num_units"] for r in result.table()[:2]] == [16, 15]  # the last round ranks first
    assert len(result.rows) == (16 + 6 + 2) * 3


def test_hyperband_is_a_third_of_the_grids_work_on_16_combinations():
    from cnn_tui.core.tuning.search import plan_search

    hyper = HyperParams.from_dict({**TINY, "num_units": list(range(1, 17)), "epochs": 9})
    grid = plan_search(hyper, SearchOptions(strategy="grid", cv=3), samples=300)
    band = plan_search(hyper, SearchOptions(strategy="hyperband", cv=3), samples=300)
    assert grid.batches / band.batches >= 3


def test_hyperband_with_real_fits_goes_on_from_the_saved_models(tmp_path):
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6], "epochs": 3})
    result = tune(class_ordered_set(classes=2, per_class=6, size=8), hyper, SearchOptions(strategy="hyperband", cv=2),
                  work_dir=tmp_path)
    check_hyperband_of_three(result, tmp_path / "models")  # the networks' states (core.tuning.fit_pool)


def test_the_median_rule_prunes_a_fit_below_the_median_after_min_epochs():
    stop = threading.Event()
    pruning = Pruning({1: [0.9, 0.8, 0.1], 2: [0.95, 0.9]}, min_epochs=2, stop=stop)
    pruning.on_epoch_end(1, {"val_accuracy": 0.5})  # below the median, but before min_epochs
    assert not stop.is_set()
    pruning.on_epoch_end(2, {"val_accuracy": 0.91})  # below the median of epoch 2 (0.925)
    assert stop.is_set() and pruning.pruned_at == 2 and pruning.curve == [0.5, 0.91]


def test_a_pruned_fit_stops_at_that_epoch_and_says_so():
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "epochs": 5, "batch_size": 4})
    from cnn_tui.core.tuning.strategies import SearchSpace, grid_rounds

    space = SearchSpace([{}], hyper.first().as_dict(), images.y, 2, 0, prune=True)
    spec = next(grid_rounds(space))[0]
    from dataclasses import replace

    spec = replace(spec, prune_after={1: [1.0, 1.0, 1.0]})  # no fit can beat a median of 100 %
    trial = run_trial(spec, images.x, images.y)
    assert trial.status == "pruned" and trial.epochs_done == 1
    assert trial.reason == "pruned at epoch 1 (below the median)" and len(trial.curve) == 1
    assert trial.row()["status"] == "pruned" and trial.row()["epochs_done"] == 1


def test_pruning_in_a_search_records_pruned_fits():
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6, 8], "epochs": 3, "batch_size": 4})
    result = tune(images, hyper, SearchOptions(cv=2, prune="median", min_epochs=1))
    assert result.status == "finished", result.message
    statuses = [row["status"] for row in result.rows]
    assert set(statuses) <= {"ok", "pruned"} and len(statuses) == 8
    for row in result.rows:
        assert row["epochs_done"] == 3 if row["status"] == "ok" else 1 <= row["epochs_done"] < 3


def test_two_worker_processes_run_the_same_trials_as_one_process(tmp_path):
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
    here = tune(images, hyper, SearchOptions(cv=2))
    there = tune(images, hyper, SearchOptions(cv=2, jobs=2), work_dir=tmp_path)
    assert there.status == "finished", there.message

    def trials(result):
        return sorted((r["num_units"], r["fold"], r["split"], r["status"]) for r in result.rows)

    assert trials(there) == trials(here) and len(there.rows) == 4
    # the same fits on the same rows give the same scores (seeded), whichever process ran them
    assert sorted(r["accuracy"] for r in there.rows) == pytest.approx(sorted(r["accuracy"] for r in here.rows))


def test_a_worker_grown_past_its_first_fits_memory_is_replaced_by_a_fresh_one(monkeypatch, tmp_path):
    from cnn_tui.core.tuning import executors

    monkeypatch.setattr(executors, "RECYCLE_GROWTH", -1.0)  # any memory counts as grown: replace after each fit
    stop = threading.Event()
    executor = executors.ProcessExecutor(2, stop)
    images = class_ordered_set(classes=2, per_class=6, size=8)
    result = tune(images, HyperParams.from_dict({**TINY, "num_units": [2, 4]}), SearchOptions(cv=2), stop=stop,
                  executor=executor, work_dir=tmp_path)
    assert result.status == "finished" and [r["status"] for r in result.rows] == ["ok"] * 4
    # A worker is replaced after its second fit. How the 4 fits fall on the 2 slots depends on timing
    # (2+2 or 4+0: two replacements; 3+1: one), so at least one and at most two, never none.
    assert 1 <= executor.recycled <= 2
    assert all(r.get("worker_mib", 0) == 0 for r in result.rows)  # not a column of the table


def test_a_fit_whose_worker_dies_runs_again_then_counts_as_failed(monkeypatch, tmp_path):
    in_run_processes(monkeypatch, "die_in_fits_in_child", CNN_TUI_TEST_DIE_UNITS="4")
    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4]})
    result = tune(images, hyper, SearchOptions(cv=2, jobs=2), work_dir=tmp_path)
    assert result.status == "finished", result.message
    died = [r for r in result.rows if r["num_units"] == 4]
    assert len(died) == 2 and all(r["status"] == "failed" and r["retries"] == 1 for r in died)
    assert all("worker process died" in r["reason"] for r in died)
    assert all(r["status"] == "ok" for r in result.rows if r["num_units"] == 2)
    assert result.best() == {"num_units": 2}


def test_a_stopped_search_in_worker_processes_ends_its_running_fits(tmp_path):
    from cnn_tui.core.events import FoldEnd

    images = class_ordered_set(classes=2, per_class=6, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6], "epochs": 200, "batch_size": 2})
    stop = threading.Event()
    timer = threading.Timer(25, stop.set)  # well after the workers have started their first fits
    timer.start()
    try:
        result = tune(images, hyper, SearchOptions(cv=2, jobs=2), stop=stop, work_dir=tmp_path,
                      emit=lambda e: isinstance(e, FoldEnd) and stop.set())
    finally:
        timer.cancel()
    assert result.status == "stopped"
    assert all(row["status"] == "ok" for row in result.rows)  # the fits the stop ended are not results
    assert len(result.rows) < 6


def test_random_and_halving_still_search(tmp_path):
    images = class_ordered_set(classes=2, per_class=9, size=8)
    hyper = HyperParams.from_dict({**TINY, "num_units": [2, 4, 6]})
    sampled = tune(images, hyper, SearchOptions(strategy="random", n_iter=2, cv=2))
    assert sampled.status == "finished" and len(sampled.rows) == 4
    halved = tune(images, hyper, SearchOptions(strategy="halving", cv=2))
    assert halved.status == "finished" and np.all([r["status"] == "ok" for r in halved.rows])


def test_a_tuned_epochs_field_keeps_its_values_in_every_row():
    """A row's own count of epochs trained is epochs_done: it never overwrites the tuned field."""
    hyper = HyperParams.from_dict({**TINY, "num_units": [1, 2, 3, 4, 5, 6, 7, 8, 9], "epochs": [9, 3]})
    executor = ScriptedExecutor(lambda params, epochs: params["num_units"] / 100 + params["epochs"] / 1000)
    result = tune(class_ordered_set(classes=2, per_class=9, size=8), hyper, SearchOptions(strategy="hyperband", cv=3),
                  executor=executor)
    assert {row["epochs"] for row in result.rows} == {3, 9}
    assert result.best() == {"epochs": 9, "num_units": 9}
    assert all(row["epochs_done"] <= row["epochs"] for row in result.rows)


def test_a_partly_scored_combination_of_a_stopped_round_is_not_the_best():
    from cnn_tui.core.tuning.search import summarize

    def row(units, rung, fold, accuracy):
        return {"num_units": units, "rung": rung, "fold": fold, "accuracy": accuracy, "loss": 0.5, "status": "ok",
                "reason": "", "samples": 10, "epochs_done": 3 * rung + 1}

    rows = [row(4, 0, f, 0.8) for f in (1, 2, 3)] + [row(8, 0, f, 0.7) for f in (1, 2, 3)] + [row(8, 1, 1, 0.99)]
    table = summarize(rows, ["num_units"], cv=3)
    assert [(r["num_units"], r["folds"]) for r in table] == [(4, 3), (8, 1)]


def test_gpus_alone_start_a_worker_for_each_gpu():
    from cnn_tui.core.tuning.executors import ProcessExecutor, make_executor

    executor = make_executor(SearchOptions(gpus=("0", "1")), stop=threading.Event())
    assert isinstance(executor, ProcessExecutor) and executor.jobs == 2 and executor.gpus == ["0", "1"]
    assert make_executor(SearchOptions(jobs=4, gpus=("0", "1")), stop=threading.Event()).jobs == 4


def test_a_free_worker_runs_the_next_fold_of_its_own_combination_then_one_no_other_worker_is_on():
    from types import SimpleNamespace

    from cnn_tui.core.tuning.executors import ProcessExecutor

    executor = ProcessExecutor(2, threading.Event())
    pending = [SimpleNamespace(params={"u": u}, fold=f) for u in (1, 2, 3) for f in (1, 2)]
    order = []
    for slot in (0, 1, 0, 1, 0, 1):  # the workers free up in turn
        spec = pending.pop(executor._next_for(slot, pending))
        executor.last[slot] = spec.params
        order.append((slot, spec.params["u"], spec.fold))
    # each combination's folds on one worker: its network is built once (core.tuning.fit_pool)
    assert order == [(0, 1, 1), (1, 2, 1), (0, 1, 2), (1, 2, 2), (0, 3, 1), (1, 3, 2)]
