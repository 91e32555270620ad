"""The machine in view in the TUI: a followed run's SystemSample line in the Training view (real run
process, no NVML here: CPU and memory only), and snapshots of the Training and Tuning views with a fake
NVML's two GPUs at 80x24 and 120x36.

Update the snapshots after an intended change with: pytest tests/tui/test_tui_system.py --snapshot-update
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cnn_tui.core.events import BatchProgress, SystemSample, TuningProgress
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import control
from cnn_tui.core.runs.execute import TaskSpec
from cnn_tui.core.runs.system_monitor import Gpus
from cnn_tui.core.tuning.search import TuningPlan

from tests_support import fake_nvml
from tui_helpers import make_app, text_of, wait_for, wait_idle


async def test_a_followed_run_shows_the_machine_under_its_progress_and_not_after_its_end(params_files, in_tmp,
                                                                                       monkeypatch):
    monkeypatch.setenv("CNN_TUI_SYSTEM_SAMPLE_SECONDS", "0.2")  # the run process inherits it
    data_path, hyper_path = params_files(classes=3, per_class=12, test_per_class=6, size=12,
                                         hyper={"epochs": 400, "batch_size": 4})
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    run = control.prepare(TaskSpec("train"), data, hyper, command="cnn-tui train --detach")
    proc = control.launch(run)  # a run process of its own, as `cnn-tui train --detach` makes
    threading.Thread(target=proc.wait, daemon=True).start()  # reaped
    deadline = time.monotonic() + 120
    while not (run.path / "history.csv").exists():  # it trains: the Runs view lists it running
        assert time.monotonic() < deadline, "no epoch in 120 s"
        await asyncio.sleep(0.2)
    app = make_app(data_path, hyper_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        runs = app.main.view("runs")
        await wait_for(pilot, lambda: runs.table.row_count == 1, timeout=30, what="the run listed")
        await pilot.press("enter")  # follow it
        system = app.main.query_one("#training-system")
        await wait_for(pilot, lambda: system.display and "RAM" in text_of(app, "#training-system"), timeout=60,
                       what="a system sample")
        line = text_of(app, "#training-system")
        assert line.startswith("CPU ") and "%" in line and " GB" in line and "GPU" not in line  # no NVML here
        await pilot.press("x")
        await wait_idle(pilot, timeout=60)
        assert not system.display  # the run is over: no machine to watch


def fake_sample(monkeypatch) -> SystemSample:
    fake_nvml(monkeypatch)
    gpus = Gpus()
    figures = gpus.sample()
    gpus.close()
    return SystemSample(figures, cpu_percent=43.0, memory_used_mb=5222.4, memory_total_mb=131072.0)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_the_training_view_shows_the_machine(snap_compare, in_tmp, monkeypatch, size):
    sample = fake_sample(monkeypatch)

    async def training(pilot):
        await pilot.press("3")
        view = pilot.app.main.view("training")
        view.start("Training on all training images: 10 epochs, batch 32, 320 images", 10, 10, validation=False)
        view.show_batch(BatchProgress(3, 10, 4, 10, 1200.0, 0.6931, 0.5, 42.0))
        view.show_system(sample)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=training)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_the_tuning_view_shows_the_machine(snap_compare, in_tmp, monkeypatch, size):
    sample = fake_sample(monkeypatch)
    candidates = [{"init_rate": r} for r in (0.02, 0.01)]

    async def tuning(pilot):
        await pilot.press("5")
        view = pilot.app.main.view("tuning")
        view.start(TuningPlan("grid", candidates, cv=3, samples=320, fits=6, batches=600))
        view.show_progress(TuningProgress(150, 600, 1, 6, 95.0))
        view.show_system(sample)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=tuning)
