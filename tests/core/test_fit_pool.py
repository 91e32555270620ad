"""Reusing one built network for the fits of one configuration (``core.tuning.fit_pool``)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.tuning import fit_pool
from cnn_tui.core.tuning.strategies import SearchSpace, grid_rounds
from cnn_tui.core.tuning.trials import network_key, run_trial
from tests.tests_support import class_ordered_set

TINY = {"num_filters": 2, "num_units": 4, "kernel_size": 3, "batch_size": 4, "init_rate": 0.05, "epochs": 2,
        "drop_out": 0.3}


def specs(config=None, cv=2):
    images = class_ordered_set(classes=2, per_class=8, size=8)
    hyper = HyperParams.from_dict({**TINY, **(config or {})})
    space = SearchSpace([{}], hyper.first().as_dict(), images.y, cv, 7)
    return images, next(grid_rounds(space))


@pytest.fixture(autouse=True)
def empty_pool():
    fit_pool.pool().clear()
    yield
    fit_pool.pool().clear()


def scores(trial):
    return trial.status, trial.accuracy, trial.loss


def test_the_folds_of_a_combination_build_one_network_and_fit_as_if_each_built_its_own():
    images, (first, second) = specs()
    builds = fit_pool.pool().builds
    reused = [run_trial(first, images.x, images.y), run_trial(second, images.x, images.y)]
    assert fit_pool.pool().builds == builds + 1 and fit_pool.pool().reuses >= 1
    fit_pool.pool().clear()
    alone = run_trial(second, images.x, images.y)  # a network of its own, built from the seed
    assert scores(reused[1]) == pytest.approx(scores(alone))
    assert reused[1].status == "finished" and not np.isnan(reused[1].accuracy)
    # the dropout's and the shuffle's random state are set back too: the same fit twice gives the same
    again = run_trial(second, images.x, images.y)
    assert scores(again) == pytest.approx(scores(alone))


def test_another_configuration_builds_another_network():
    images, (first, _) = specs()
    run_trial(first, images.x, images.y)
    builds = fit_pool.pool().builds
    wider = replace(first, config={**first.config, "num_units": 6})
    run_trial(wider, images.x, images.y)
    assert fit_pool.pool().builds == builds + 1
    assert network_key(wider, images.x, images.y) != network_key(first, images.x, images.y)


def test_a_kept_state_brings_back_the_weights_and_the_optimizer(tmp_path):
    images, (first, _) = specs()
    trial = run_trial(replace(first, keep_model=True), images.x, images.y, work_dir=str(tmp_path))
    assert trial.model_file and trial.model_file.endswith(".npz")
    trained = fit_pool.capture(fit_pool.pool().model)
    assert int(fit_pool.pool().model.optimizer.iterations.numpy()) > 0  # Adam's/SGD's step count moved on
    model = fit_pool.pool().take(fit_pool.pool().key, lambda: None, first.seed)  # set back to the initial state
    assert not all(np.array_equal(a, b) for a, b in zip(fit_pool.capture(model), trained))
    fit_pool.load_state(model, trial.model_file)
    assert all(np.array_equal(a, b) for a, b in zip(fit_pool.capture(model), trained))


def test_a_state_of_another_network_is_refused_with_the_variable_named(tmp_path):
    images, (first, _) = specs()
    trial = run_trial(replace(first, keep_model=True), images.x, images.y, work_dir=str(tmp_path))
    wider = replace(first, config={**first.config, "num_units": 6}, start_model=trial.model_file, initial_epoch=1)
    failed = run_trial(wider, images.x, images.y)
    assert failed.status == "failed" and "the saved state" in failed.reason


def test_an_architecture_trained_in_stages_is_built_for_each_fit():
    images, (first, _) = specs()
    staged = replace(first, config={**first.config, "architecture": "mobilenet_v3_small"})
    assert network_key(staged, images.x, images.y) is None
    assert network_key(first, images.x, images.y) is not None


def test_each_thread_has_a_network_of_its_own():
    import threading

    here = fit_pool.pool()
    there = []
    thread = threading.Thread(target=lambda: there.append(fit_pool.pool()))
    thread.start()
    thread.join()
    assert there[0] is not here and fit_pool.pool() is here


def test_a_later_round_trains_on_the_kept_networks_without_building_them_again(tmp_path):
    images, (first, second) = specs()  # planned: 2 epochs
    before = fit_pool.pool().builds
    wider = [replace(s, key=s.key.replace("c0", "c1"), config={**s.config, "num_units": 6}) for s in (first, second)]
    ended = [run_trial(replace(s, keep_model=True, epochs=1), images.x, images.y, work_dir=str(tmp_path))
             for s in (first, second, *wider)]  # round 1: 1 epoch each, both networks kept
    builds = fit_pool.pool().builds
    assert builds == before + 2 and len(fit_pool.pool().networks) == 2
    promoted = [replace(t.spec, keep_model=False, start_model=t.model_file, initial_epoch=1, epochs=2) for t in ended[:2]]
    goes_on = [run_trial(p, images.x, images.y) for p in promoted]  # round 2: the narrow one, from epoch 1 to 2
    assert [(t.status, t.epochs_done) for t in goes_on] == [("finished", 2), ("finished", 2)]
    assert fit_pool.pool().builds == builds  # trained on, not built again


def test_networks_no_round_will_train_on_are_dropped_and_the_kept_ones_fit_a_budget():
    images, (first, _) = specs()
    small = fit_pool.FitPool(budget_mib=0)  # room for the last network only
    for units in (4, 6):
        spec = replace(first, config={**first.config, "num_units": units})
        key = network_key(spec, images.x, images.y)
        small.take(key, lambda s=spec: _built(images, s), first.seed, keep=True)
    assert len(small.networks) == 1 and small.builds == 2
    roomy = fit_pool.FitPool(budget_mib=512)
    for units, keep in ((4, True), (6, False), (8, False)):
        spec = replace(first, config={**first.config, "num_units": units})
        roomy.take(network_key(spec, images.x, images.y), lambda s=spec: _built(images, s), first.seed, keep=keep)
    assert [json.loads(k)["config"]["num_units"] for k in roomy.networks] == [4, 8]  # kept, and the last


def _built(images, spec):
    from cnn_tui.core.models.model import build_model
    from cnn_tui.core.params.files import ModelConfig

    config = ModelConfig.from_dict(spec.config)
    return build_model(config, image_size=images.image_size, channels=1, class_names=["0", "1"]).keras_model


def test_a_worker_serving_another_search_drops_the_networks_of_the_last_one():
    images, (first, _) = specs()
    pool = fit_pool.FitPool()
    pool.serve("search-1")
    pool.take(network_key(first, images.x, images.y), lambda: _built(images, first), first.seed, keep=True)
    pool.serve("search-1")
    assert len(pool.networks) == 1
    pool.serve("search-2")
    assert not pool.networks


def out_of_memory_above(monkeypatch, largest):
    """Every Keras fit at a batch above ``largest`` runs out of (host) memory; the batches fits ran at."""
    from cnn_tui.core.backend import load_keras

    model_class = load_keras().Model
    fit = model_class.fit
    seen = []

    def limited_fit(self, *args, **kwargs):
        seen.append(kwargs.get("batch_size"))
        if kwargs.get("batch_size", 32) > largest:
            raise MemoryError("injected: out of memory")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(model_class, "fit", limited_fit)
    return seen


def test_a_tuning_fit_out_of_memory_is_retried_at_half_the_batch_and_marked(monkeypatch):
    images, (first, second) = specs({"batch_size": 8})
    seen = out_of_memory_above(monkeypatch, 4)
    reused = [run_trial(first, images.x, images.y), run_trial(second, images.x, images.y)]
    assert seen == [8, 4, 8, 4]
    for trial in reused:
        assert trial.status == "finished" and not np.isnan(trial.accuracy)
        assert trial.reason == "out of memory at batch 8: trained at 4 x 2 accumulated"
        assert trial.row()["status"] == "ok" and trial.row()["reason"] == trial.reason
    # the pooled network was compiled again for the smaller batch: the next fit builds its own, as a fresh one would
    fit_pool.pool().clear()
    alone = run_trial(second, images.x, images.y)
    assert scores(reused[1]) == pytest.approx(scores(alone))
