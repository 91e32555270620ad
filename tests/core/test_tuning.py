import math
import threading

import pytest

from cnn_tui.core.errors import DatasetError
from cnn_tui.core.events import FoldEnd, TuningProgress
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning import search
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import best_hyper_params, plan_search, tune

from tests_support import TINY_HYPER, class_ordered_set, fail_fits_with

GRID = HyperParams.from_dict({**TINY_HYPER, "epochs": 3, "num_units": [16, 32]})


def test_grid_search_records_every_fold_and_folds_are_stratified():
    events = []
    result = tune(class_ordered_set(), GRID, SearchOptions(cv=3), emit=events.append)
    assert result.status == "finished"
    assert len(result.rows) == 6
    assert [(r["num_units"], r["fold"]) for r in result.rows] == [(16, 1), (16, 2), (16, 3), (32, 1), (32, 2), (32, 3)]
    for row in result.rows:
        assert row["status"] == "ok" and row["samples"] == 24 and row["fit_seconds"] > 0
        # every validation fold holds every class, so every fold is learnable: far above the 0 an
        # unshuffled KFold gives when a whole class is missing from training
        assert row["accuracy"] > 0.6, row
        assert math.isfinite(row["loss"])
    folds = [e for e in events if isinstance(e, FoldEnd)]
    assert [e.fits_done for e in folds] == [1, 2, 3, 4, 5, 6] and folds[-1].fits_total == 6
    progress = [e for e in events if isinstance(e, TuningProgress)]
    assert progress[-1].batches_done == progress[-1].batches_total == result.plan.batches
    table = result.table()
    assert [r["num_units"] for r in table] and table[0]["mean_accuracy"] >= table[1]["mean_accuracy"]
    assert table[0]["folds"] == 3
    assert result.best() == {"num_units": table[0]["num_units"]}
    best = best_hyper_params(GRID, result.best())
    assert best.values["num_units"] == table[0]["num_units"] and best.grid() == {}


def test_stop_returns_the_folds_done_so_far():
    stop = threading.Event()

    def emit(event):
        if isinstance(event, FoldEnd):
            stop.set()

    result = tune(class_ordered_set(), GRID, SearchOptions(cv=3), emit=emit, stop=stop)
    assert result.status == "stopped"
    assert len(result.rows) == 1 and result.message == "stopped by the user after 1 of 6 fits"
    assert result.table()[0]["folds"] == 1


def test_stop_inside_a_fit_ends_it_within_a_batch():
    stop = threading.Event()
    seen = []

    def emit(event):
        if isinstance(event, TuningProgress):
            seen.append(event.batches_done)
            stop.set()

    slow = HyperParams.from_dict({**TINY_HYPER, "epochs": 50, "batch_size": 2, "num_units": [16, 32]})
    result = tune(class_ordered_set(), slow, SearchOptions(cv=3), emit=emit, stop=stop)
    assert result.status == "stopped" and result.rows == []
    assert len(seen) == 1  # no further progress: the fit ended at the batch after the stop


def test_a_failing_fit_is_recorded_and_the_search_goes_on(monkeypatch):
    fail_fits_with(monkeypatch, num_units=16)
    result = tune(class_ordered_set(), GRID, SearchOptions(cv=3))
    assert result.status == "finished" and "3 fit(s) failed" in result.message
    failed = [r for r in result.rows if r["status"] == "failed"]
    assert len(failed) == 3 and {r["num_units"] for r in failed} == {16}
    assert failed[0]["reason"].startswith("out of memory")
    table = result.table()
    assert table[0]["num_units"] == 32 and table[-1]["failed"] == 3 and math.isnan(table[-1]["mean_accuracy"])
    assert result.best() == {"num_units": 32}


def test_random_search_samples_n_iter_combinations():
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "num_units": [8, 16, 32], "num_filters": [4, 8]})
    result = tune(class_ordered_set(), hyper, SearchOptions(strategy="random", n_iter=2, cv=2))
    combos = {(r["num_units"], r["num_filters"]) for r in result.rows}
    assert len(result.rows) == 4 and len(combos) == 2
    assert [dict(c) for c in result.plan.candidates] == [
        {"num_filters": f, "num_units": u} for u, f in [(r["num_units"], r["num_filters"]) for r in result.rows[::2]]
    ]


def test_halving_search_scores_survivors_on_more_data():
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "num_units": [8, 16, 32]})
    result = tune(class_ordered_set(per_class=24), hyper, SearchOptions(strategy="halving", cv=2))
    assert result.status == "finished"
    sizes = sorted({r["samples"] for r in result.rows})
    assert len(sizes) == 2 and sizes[0] < sizes[1]
    assert len([r for r in result.rows if r["samples"] == sizes[1]]) == 2  # one survivor x 2 folds
    assert result.table()[0]["samples"] == sizes[1]


def test_plan_counts_fits_and_refuses_bad_settings():
    plan = plan_search(GRID, SearchOptions(cv=3), samples=36)
    assert plan.fits == 6 and plan.columns == ["num_units"]
    assert plan.batches == 2 * 3 * 3 * math.ceil(24 / 8)
    with pytest.raises(Exception, match="at least 2 folds"):
        plan_search(GRID, SearchOptions(cv=1), samples=36)
    with pytest.raises(DatasetError, match="5-fold cross-validation needs at least 5 images in every class"):
        tune(class_ordered_set(per_class=4), GRID, SearchOptions(cv=5))


def test_a_plan_made_for_other_options_is_refused():
    plan = plan_search(GRID, SearchOptions(cv=2), samples=36)
    with pytest.raises(ValueError, match="not of this search"):
        tune(class_ordered_set(), GRID, SearchOptions(cv=3), plan=plan)


def test_a_tune_task_gives_its_search_options_with_the_data_seed():
    from cnn_tui.core.runs.execute import TaskSpec

    spec = TaskSpec("tune", strategy="hyperband", cv=4, n_iter=7, max_samples=500, jobs=2, gpus=["0", "1"],
                    cluster="local:2", security="sec.yaml", prune="median")
    assert spec.search_options(seed=7) == SearchOptions(
        strategy="hyperband", cv=4, n_iter=7, max_samples=500, seed=7, prune="median", jobs=2, gpus=("0", "1"),
        cluster="local:2", security="sec.yaml")
    assert TaskSpec("tune").search_options(seed=42) == SearchOptions()  # the task's defaults are the search's


def test_a_run_plans_its_search_once_and_runs_the_plan_it_announced(params_files, tmp_path, monkeypatch):
    from cnn_tui.core.events import SearchPlanned
    from cnn_tui.core.params.files import DataParams
    from cnn_tui.core.runs import control, execute
    from cnn_tui.core.runs.execute import TaskSpec

    planned_with = []
    real = search.plan_search

    def counted(hyper, options, **kwargs):
        planned_with.append(options)
        return real(hyper, options, **kwargs)

    monkeypatch.setattr(search, "plan_search", counted)  # tune's own planning, when it has no plan
    monkeypatch.setattr(execute, "plan_search", counted)  # the run's
    data_path, hyper_path = params_files(per_class=6, hyper={"epochs": 1, "num_units": [4, 8, 16],
                                                             "num_filters": [2, 4]})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    spec = TaskSpec("tune", strategy="random", n_iter=2, cv=2)
    run = control.prepare(spec, data, hyper, parent=tmp_path / "runs")
    events = []
    outcome = control.run_here(run, TaskSpec.load(run.path), emit=events.append)
    assert outcome.status == "finished", outcome.message
    assert planned_with == [spec.search_options(data.seed)]  # once, with the task's options
    [announced] = [e for e in events if isinstance(e, SearchPlanned)]
    ran = [{name: e.row[name] for name in ("num_filters", "num_units")} for e in events if isinstance(e, FoldEnd)]
    assert len(announced.candidates) == 2 and announced.fits == 4
    # each announced combination on both folds, in order, and nothing else: 2 of the 6 drawn once
    assert ran[0::2] == announced.candidates and ran[1::2] == announced.candidates
    assert outcome.tuning.result.plan.candidates == announced.candidates


def test_every_validation_fold_holds_every_class(monkeypatch):
    from cnn_tui.core.tuning import executors

    seen = []
    real = executors.run_trial

    def spy(spec, x, y, **kwargs):
        seen.append(sorted(set(y[spec.test_rows].tolist())))
        return real(spec, x, y, **kwargs)

    monkeypatch.setattr(executors, "run_trial", spy)
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 1})
    tune(class_ordered_set(classes=4, per_class=9), hyper, SearchOptions(cv=3))
    assert seen == [[0, 1, 2, 3]] * 3


def test_halving_ranks_its_finalists_above_combinations_dropped_on_less_data():
    def fold(units, samples, accuracy):
        return {"num_units": units, "samples": samples, "accuracy": accuracy, "loss": 0.5, "status": "ok", "reason": ""}

    # 16 scored well on a small first round but was dropped; 32 went on to the full data
    rows = [fold(16, 100, 0.95), fold(32, 100, 0.90), fold(32, 300, 0.85)]
    table = search.summarize(rows, ["num_units"])
    assert [(r["num_units"], r["samples"]) for r in table] == [(32, 300), (16, 100)]
    assert table[0]["mean_accuracy"] == pytest.approx(0.85)


def test_folds_of_unequal_size_all_count_in_the_summary():
    """27 images in 2 folds train on 13 and 14: both folds are the combination's result."""
    from cnn_tui.core.tuning.search import summarize

    rows = [{"num_filters": 4, "samples": n, "accuracy": a, "loss": 0.5, "status": "ok", "reason": ""}
            for n, a in ((13, 0.6), (14, 0.8))]
    rows.append({"num_filters": 4, "samples": 4, "accuracy": 0.1, "loss": 2.0, "status": "ok", "reason": ""})  # an earlier halving round
    [row] = summarize(rows, ["num_filters"])
    assert row["folds"] == 2 and abs(row["mean_accuracy"] - 0.7) < 1e-9 and row["samples"] == 14


def test_halving_plans_the_fits_it_runs_on_little_data():
    """12 images and 9 combinations leave scikit-learn room for one round only: 18 fits, not 26."""
    from cnn_tui.core.tuning.search import halving_rounds, plan_search

    hyper = HyperParams.from_dict({**TINY_HYPER, "num_filters": [2, 3, 4], "num_units": [4, 6, 8], "epochs": 1})
    images = class_ordered_set(per_class=4)
    assert halving_rounds(9, 12, 2, 3) == [(9, 12)]
    assert plan_search(hyper, SearchOptions(strategy="halving", cv=2), samples=12, classes=3).fits == 18
    result = tune(images, hyper, SearchOptions(strategy="halving", cv=2))
    assert result.status == "finished" and len(result.rows) == 18
    assert result.message == "18 fits in 1 round(s) of halving over images, 9 combinations"
    # with more data, every round scikit-learn needs: 9 combinations on 18 images, 3 on 54, 1 on 162
    assert halving_rounds(9, 162, 3, 3) == [(9, 18), (3, 54), (1, 162)]


def test_a_search_retries_a_fit_out_of_memory_and_its_table_says_so(monkeypatch):
    from cnn_tui.core.backend import load_keras

    model_class = load_keras().Model
    fit = model_class.fit

    def limited_fit(self, *args, **kwargs):
        if kwargs.get("batch_size", 32) > 4:
            raise MemoryError("injected: out of memory")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(model_class, "fit", limited_fit)
    hyper = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "batch_size": 8, "num_units": [16, 32]})
    result = tune(class_ordered_set(), hyper, SearchOptions(cv=2))
    assert result.status == "finished" and len(result.rows) == 4
    assert {r["status"] for r in result.rows} == {"ok"}
    assert {r["reason"] for r in result.rows} == {"out of memory at batch 8: trained at 4 x 2 accumulated"}
    table = result.table()
    assert [r["folds"] for r in table] == [2, 2] and {r["failed"] for r in table} == {0}
    assert {r["reason"] for r in table} == {"out of memory at batch 8: trained at 4 x 2 accumulated"}
