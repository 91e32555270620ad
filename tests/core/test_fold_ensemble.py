"""tune --ensemble: every finished fold saves its model; the best combination's (or the top K's)
are moved to the run folder and averaged into ensemble.keras; a resumed search keeps those saved."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.events import FoldEnd
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.evaluation import predict_probabilities
from cnn_tui.core.tuning.fold_ensemble import keep_fold_ensemble
from cnn_tui.core.tuning.options import SearchOptions
from cnn_tui.core.tuning.search import tune
from cnn_tui.core.tuning.trials import FOLD_MODELS

from tests_support import TINY_HYPER, class_ordered_set

GRID = HyperParams.from_dict({**TINY_HYPER, "epochs": 1, "num_units": [8, 16]})


def test_the_best_combinations_folds_become_one_ensemble(tmp_path):
    images = class_ordered_set(classes=3, per_class=8, size=10)
    work, run_dir = tmp_path / ".work", tmp_path / "run"
    run_dir.mkdir()
    result = tune(images, GRID, SearchOptions(cv=2, ensemble_top=1), work_dir=work)
    assert result.status == "finished"
    assert len(list((work / FOLD_MODELS).glob("*.keras"))) == 4  # 2 combinations x 2 folds
    kept = keep_fold_ensemble(result, work, run_dir, class_names=["x", "y", "z"], hyper=GRID, top=1)
    assert kept is not None and kept.path == run_dir / "ensemble.keras" and kept.combinations == 1
    assert sorted(p.name for p in (run_dir / "ensemble").iterdir()) == ["fold-1.keras", "fold-2.keras"]
    net = NetModel.load(kept.path)
    best = result.best()["num_units"]
    assert net.class_names == ["x", "y", "z"] and net.config.num_units == best
    assert [m["model"] for m in net.members] == ["ensemble/fold-1.keras", "ensemble/fold-2.keras"]
    members = [NetModel.load(p) for p in kept.members]
    assert all(m.class_names == ["x", "y", "z"] and m.config.num_units == best for m in members)
    x = images.x[:6]
    np.testing.assert_allclose(predict_probabilities(net, x),
                               np.mean([predict_probabilities(m, x) for m in members], axis=0), rtol=1e-5, atol=1e-6)


def test_the_top_two_combinations_give_four_members(tmp_path):
    images = class_ordered_set(classes=3, per_class=8, size=10)
    work, run_dir = tmp_path / ".work", tmp_path / "run"
    run_dir.mkdir()
    result = tune(images, GRID, SearchOptions(cv=2, ensemble_top=2), work_dir=work)
    kept = keep_fold_ensemble(result, work, run_dir, class_names=["a", "b", "c"], hyper=GRID, top=2)
    assert kept is not None and kept.combinations == 2 and len(kept.members) == 4
    assert {p.name for p in kept.members} == {f"combination-{r}-fold-{f}.keras" for r in (1, 2) for f in (1, 2)}
    assert len(NetModel.load(kept.path).members) == 4


def test_a_resumed_search_keeps_the_fold_models_already_saved(tmp_path):
    images = class_ordered_set(classes=3, per_class=8, size=10)
    work, run_dir = tmp_path / ".work", tmp_path / "run"
    run_dir.mkdir()
    stop = threading.Event()
    first = tune(images, GRID, SearchOptions(cv=2, ensemble_top=1), work_dir=work, stop=stop,
                 emit=lambda e: stop.set() if isinstance(e, FoldEnd) else None)
    assert first.status == "stopped" and len(first.rows) == 1
    (saved,) = (work / FOLD_MODELS).glob("*.keras")
    stamp = saved.stat().st_mtime_ns
    resumed = tune(images, GRID, SearchOptions(cv=2, ensemble_top=1), work_dir=work, done_rows=first.rows)
    assert resumed.status == "finished" and saved.stat().st_mtime_ns == stamp  # not fitted again
    assert len(list((work / FOLD_MODELS).glob("*.keras"))) == 4
    assert keep_fold_ensemble(resumed, work, run_dir, class_names=["a", "b", "c"], hyper=GRID, top=1) is not None


def test_an_ensemble_on_a_cluster_is_one_line():
    with pytest.raises(ParamsError, match="--cluster"):
        tune(class_ordered_set(), GRID, SearchOptions(cv=2, ensemble_top=1, cluster="local:1"))


def test_a_search_without_ensemble_saves_no_fold_model(tmp_path):
    tune(class_ordered_set(classes=2, per_class=6, size=10), GRID, SearchOptions(cv=2), work_dir=tmp_path / "w")
    assert not (tmp_path / "w" / FOLD_MODELS).exists()


def test_a_stopped_tune_run_with_ensemble_resumes_and_makes_ensemble_keras(params_files, tmp_path):
    from cnn_tui.core.params.files import DataParams
    from cnn_tui.core.runs import control
    from cnn_tui.core.runs.execute import TaskSpec

    data_path, hyper_path = params_files(per_class=8, size=10, hyper={"num_units": [8, 16], "epochs": 1})
    run = control.prepare(TaskSpec("tune", cv=2, ensemble_top=1), DataParams.load(data_path),
                          HyperParams.load(hyper_path), parent=tmp_path / "runs")
    stop = threading.Event()
    outcome = control.run_here(run, TaskSpec.load(run.path), stop=stop,
                               emit=lambda e: stop.set() if isinstance(e, FoldEnd) and e.fits_done == 2 else None)
    assert outcome.status == "stopped" and not (run.path / "ensemble.keras").exists()
    saved = {p.name: p.stat().st_mtime_ns for p in (run.path / ".work" / FOLD_MODELS).glob("*.keras")}
    assert len(saved) == 2
    resumed, spec = control.prepare_resume(run.path)
    assert spec.ensemble_top == 1
    outcome = control.run_here(resumed, spec)
    assert outcome.status == "finished", outcome.message
    assert outcome.details["ensemble"]["members"] == ["ensemble/fold-1.keras", "ensemble/fold-2.keras"]
    assert len(NetModel.load(run.path / "ensemble.keras").members) == 2
    assert not (run.path / ".work").exists()
