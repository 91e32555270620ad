"""Snapshots of the main screen, the hyper-params form, the model summary, the confusion matrix and
the tuning results. Made deterministic: fixed terminal sizes, a fixed device label, results built
from fixed numbers (no timings, no temp paths, no spinners, no images).

Update after an intended change with: pytest tests/tui/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from textual.widgets import Input

from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.core.runs import steps
from cnn_tui.core.training.evaluation import Evaluation
from cnn_tui.core.tuning.search import TuningPlan, TuningResult
from cnn_tui.tui.screens import main as main_screen
from cnn_tui.tui.session import Session

from tui_helpers import make_app

LUNG = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]


def test_main_screen(snap_compare, params_files, in_tmp):
    data, hyper = params_files(classes=3)
    assert snap_compare(make_app(data, hyper), terminal_size=(80, 24))


def test_hyper_params_form(snap_compare, params_files, in_tmp):
    data, hyper = params_files(classes=3, hyper={"init_rate": [0.02, 0.01], "epochs": [5, 10]})

    async def open_form(pilot):
        await pilot.press("h")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#field-kernel_size", Input).value = "0"  # shows an error next to its field
        for field in form.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(make_app(data, hyper), terminal_size=(80, 24), run_before=open_form)


def test_model_summary(snap_compare, params_files, in_tmp):
    data_path, hyper_path = params_files(classes=3, size=12)
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    net = steps.new_model(data, hyper)
    session = Session(data=data, hyper=hyper, model=net, model_note="new, 3,099 params")
    assert snap_compare(make_app(session=session), terminal_size=(100, 30), press=["2"])


def lung_evaluation() -> Evaluation:
    """A fixed 4-class result: counts per (true, predicted) pair become one-hot probabilities."""
    counts = np.array([[30, 4, 1, 5], [3, 12, 0, 2], [0, 0, 54, 0], [6, 1, 0, 28]])
    y_true, probabilities = [], []
    for t, row in enumerate(counts):
        for p, n in enumerate(row):
            for _ in range(n):
                y_true.append(t)
                probabilities.append([0.85 if k == p else 0.05 for k in range(4)])
    files = [f"img_{i}.png" for i in range(len(y_true))]
    return Evaluation(LUNG, np.array(y_true), np.array(probabilities, dtype=np.float32), files, 1.0)


def test_confusion_matrix(snap_compare, in_tmp):
    session = Session(evaluation=lung_evaluation(), model_note="trained 20 epochs")
    assert snap_compare(make_app(session=session), terminal_size=(140, 34), press=["4"])


def tuning_result() -> TuningResult:
    candidates = [{"init_rate": r, "num_filters": f} for r in (0.02, 0.01) for f in (30, 40)]
    plan = TuningPlan("grid", candidates, cv=3, samples=320, fits=12, batches=2400)
    accuracies = [0.925, 0.95, 0.9125, 0.9875, 0.9625, 0.9625, 0.7]
    losses = [0.2879, 0.3229, 0.3681, 0.3513, 0.3797, 0.4333, 0.6993]
    rows = []
    for i, (acc, loss) in enumerate(zip(accuracies, losses)):
        combo = candidates[i // 3]
        rows.append({**combo, "fold": i % 3 + 1, "samples": 213, "epochs_done": 30, "accuracy": acc, "loss": loss,
                     "fit_seconds": 12.0, "status": "ok", "reason": ""})
    return TuningResult("stopped", "stopped by the user after 7 of 12 fits", plan, rows, 84.0)


def test_tuning_results(snap_compare, in_tmp):
    session = Session(tuning=tuning_result())
    assert snap_compare(make_app(session=session), terminal_size=(100, 34), press=["5"])


# Every view at the two widths the README names: 80×24 (the smallest it supports) and 120×36 (comfortable).
# Nothing a person needs may be cut at either: footer keys, table columns, help lines, headings.
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


@pytest.mark.parametrize("size", SIZES)
def test_data_view_at(size, snap_compare, params_files, in_tmp):
    data, hyper = params_files(classes=3)
    assert snap_compare(make_app(data, hyper), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_hyper_form_at(size, snap_compare, params_files, in_tmp):
    data, hyper = params_files(classes=3, hyper={"init_rate": [0.02, 0.01]})

    async def open_form(pilot):
        await pilot.press("h")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#field-architecture", Input).focus()  # the field with one of the longest help lines
        for field in form.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(make_app(data, hyper), terminal_size=size, run_before=open_form)


@pytest.mark.parametrize("size", SIZES)
def test_model_view_at(size, snap_compare, params_files, in_tmp):
    data_path, hyper_path = params_files(classes=3, size=12)
    data, hyper = DataParams.load(data_path), HyperParams.load(hyper_path)
    session = Session(data=data, hyper=hyper, model=steps.new_model(data, hyper), model_note="new, 3,099 params")
    assert snap_compare(make_app(session=session), terminal_size=size, press=["2"])


@pytest.mark.parametrize("size", SIZES)
def test_training_view_at(size, snap_compare, in_tmp):
    assert snap_compare(make_app(session=Session()), terminal_size=size, press=["3"])


@pytest.mark.parametrize("size", SIZES)
def test_evaluation_view_at(size, snap_compare, in_tmp):
    session = Session(evaluation=lung_evaluation(), model_note="trained 20 epochs")
    assert snap_compare(make_app(session=session), terminal_size=size, press=["4"])


@pytest.mark.parametrize("size", SIZES)
def test_tuning_view_at(size, snap_compare, in_tmp):
    assert snap_compare(make_app(session=Session(tuning=tuning_result())), terminal_size=size, press=["5"])


class FixedClock(datetime):
    """The log's time stamps at a fixed time, so the Log view's snapshot is the same at any hour."""

    @classmethod
    def now(cls, tz=None):  # noqa: ARG003 — datetime.now's signature
        return cls(2026, 1, 1, 9, 30, 0)


@pytest.mark.parametrize("size", SIZES)
def test_log_view_at(size, snap_compare, in_tmp, monkeypatch):
    monkeypatch.setattr(main_screen, "datetime", FixedClock)
    assert snap_compare(make_app(session=Session()), terminal_size=size, press=["6"])


@pytest.mark.parametrize("size", SIZES)
def test_runs_view_at(size, snap_compare, in_tmp):
    (in_tmp / "results").mkdir()
    assert snap_compare(make_app(session=Session()), terminal_size=size, press=["7"])
