"""The learning-rate finder (a sweep inside the rates, the model restored, its PNG) and the one_cycle
schedule (a rise then a fall, kept across a resume)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from cnn_tui.core.errors import ParamsError
from cnn_tui.core.events import EpochEnd
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.models.optimizers import ONE_CYCLE_DIV, learning_rate
from cnn_tui.core.params.files import DataParams, HyperParams, ModelConfig
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.folder import read_run
from cnn_tui.core.training.lr_finder import RULE, find_rate, smooth, steepest
from tests.tests_support import TINY_HYPER, class_ordered_set


def tiny_net(images, **fields):
    config = HyperParams.from_dict({**TINY_HYPER, **fields}).first()
    return build_model(config, image_size=images.image_size, channels=1, class_names=images.class_names), config


def test_smoothing_is_bias_corrected_and_steepest_picks_the_fastest_fall():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0 at the start
    rates = [10.0 ** e for e in np.linspace(-6, 0, 61)]
    losses = [2.0 - 1.5 / (1 + np.exp(-(np.log10(r) + 3) * 4)) for r in rates]  # falls fastest at 1e-3
    losses[-5:] = [3.0, 4.0, 6.0, 9.0, 12.0]  # then explodes
    assert steepest(rates, losses) == pytest.approx(1e-3, rel=0.3)


@pytest.mark.parametrize("fields", [{}, {"optimizer": "adam", "flip": "horizontal", "label_smoothing": 0.1,
                                         "class_weight": "balanced"}])
def test_the_finder_suggests_a_rate_of_its_sweep_and_restores_the_model(fields):
    images = class_ordered_set(classes=3, per_class=8, size=12)
    net, config = tiny_net(images, **fields)
    before = [np.array(w) for w in net.keras_model.get_weights()]
    sweep = find_rate(net, images, config, steps=40)
    assert 5 < len(sweep.rates) <= 40 and len(sweep.losses) == len(sweep.smoothed) == len(sweep.rates)
    assert sweep.rates[0] == pytest.approx(1e-7) and all(b > a for a, b in zip(sweep.rates, sweep.rates[1:]))
    assert sweep.rates[0] <= sweep.suggestion <= sweep.rates[-1] and sweep.rule == RULE
    assert sweep.init_rate == sweep.suggestion
    after = net.keras_model.get_weights()
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_the_finder_stops_when_asked():
    images = class_ordered_set(classes=3, per_class=8, size=12)
    net, config = tiny_net(images)
    stop = threading.Event()
    stop.set()
    sweep = find_rate(net, images, config, steps=40, stop=stop)
    assert sweep.status == "stopped" and len(sweep.rates) == 1


def test_the_lr_find_task_writes_its_plot_and_table_and_no_model(params_files, tmp_path):
    data_path, hyper_path = params_files(per_class=10)
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("lr_find", sweep_steps=30), data, hyper, parent=tmp_path / "runs")
    outcome = control.run_here(run, TaskSpec.load(run.path))
    assert outcome.status == "finished", outcome.message
    png = run.path / "lr_find.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (run.path / "lr_find.csv").read_text().splitlines()
    assert table[0] == "rate,loss,smoothed_loss" and len(table) == 1 + outcome.details["batches"]
    rates = [float(line.split(",")[0]) for line in table[1:]]
    record = read_run(run.path)
    assert record["status"] == "finished" and rates[0] <= record["details"]["suggested_rate"] <= rates[-1] * 1.05
    assert "steepest descent" in record["message"] and not (run.path / "model.keras").exists()


# ---------------------------------------------------------------- one_cycle


def test_one_cycle_rises_to_init_rate_then_anneals_towards_zero():
    config = ModelConfig(**{**HyperParams.defaults().first().as_dict(), "schedule": "one_cycle", "init_rate": 0.1,
                            "epochs": 4, "warmup_fraction": 0.25})
    schedule = learning_rate(config, steps_per_epoch=25)  # 100 steps: up over 25, down over 75
    rates = [float(schedule(step)) for step in range(0, 101)]
    assert rates[0] == pytest.approx(0.1 / ONE_CYCLE_DIV)
    assert int(np.argmax(rates)) == 25 and rates[25] == pytest.approx(0.1)
    assert all(b >= a for a, b in zip(rates[:25], rates[1:26])) and all(b <= a for a, b in zip(rates[25:], rates[26:]))
    assert rates[100] < 1e-6


def test_one_cycle_fields_are_validated_in_one_line(tmp_path):
    path = tmp_path / "hyper.json"
    path.write_text(json.dumps({"schedule": "one_cycle", "warmup_fraction": 1.5}))
    with pytest.raises(ParamsError) as caught:
        HyperParams.load(path)
    assert "warmup_fraction" in str(caught.value) and "\n" not in str(caught.value) and "hyper.json" in str(caught.value)
    path.write_text(json.dumps({"schedule": "one_cycel"}))
    with pytest.raises(ParamsError, match="one_cycle"):
        HyperParams.load(path)
    hyper = HyperParams.from_dict({"schedule": ["one_cycle", "cosine"], "warmup_fraction": [0.1, 0.3]})
    assert hyper.shown("warmup_fraction") and hyper.first().warmup_fraction == 0.1


def test_one_cycle_survives_a_stop_and_resume(params_files, tmp_path):
    data_path, hyper_path = params_files(per_class=16, hyper={"epochs": 4, "batch_size": 8, "schedule": "one_cycle"})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train"), data, hyper, parent=tmp_path / "runs")
    stop = threading.Event()
    outcome = control.run_here(run, TaskSpec.load(run.path), stop=stop,
                               emit=lambda e: stop.set() if isinstance(e, EpochEnd) and e.epoch == 2 else None)
    assert outcome.status == "stopped"
    batches = 6  # 48 images in batches of 8
    uninterrupted = learning_rate(hyper.first(), steps_per_epoch=batches)
    kept = NetModel.load(run.path / "resume.keras", with_optimizer=True).keras_model.optimizer
    assert int(np.asarray(kept.iterations)) == 2 * batches
    assert float(np.asarray(kept.learning_rate)) == pytest.approx(float(uninterrupted(2 * batches)))
    resumed, spec = control.prepare_resume(run.path)
    assert control.run_here(resumed, spec).status == "finished"
    done = NetModel.load(run.path / "model.keras", with_optimizer=True).keras_model.optimizer
    assert int(np.asarray(done.iterations)) == 4 * batches
    assert float(np.asarray(done.learning_rate)) == pytest.approx(float(uninterrupted(4 * batches)))


@pytest.mark.slow  # a MobileNetV3 on a loaded 2-core machine: about 40 s
def test_a_backbone_sweeps_its_first_phase_and_keeps_its_trainable_layers():
    images = class_ordered_set(classes=3, per_class=3, size=12)
    config = ModelConfig(**{**HyperParams.defaults().first().as_dict(), "architecture": "mobilenet_v3_small",
                            "batch_size": 3, "optimizer": "adam", "freeze_epochs": 1, "epochs": 2})
    net = build_model(config, image_size=12, channels=1, class_names=images.class_names)
    backbone = net.keras_model.get_layer("backbone")
    flags = [layer.trainable for layer in backbone.layers]
    before = [np.array(w) for w in net.keras_model.get_weights()]
    sweep = find_rate(net, images, config, steps=12)
    assert len(sweep.rates) >= 6 and sweep.suggestion is not None
    assert [layer.trainable for layer in backbone.layers] == flags
    assert all(np.array_equal(a, b) for a, b in zip(before, net.keras_model.get_weights()))
