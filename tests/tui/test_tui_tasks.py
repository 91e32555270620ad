"""The heavy tasks through the UI on tiny real images: load, initialise, train (charts and epoch
table grow), evaluate, predict, tune, stop, save and reload a model, quit while running.

Training and tuning run in a run process of their own (``core.runs.control``): the app follows its
events, and the tests wait for the run to end through the app (``wait_idle``) or its folder."""

from __future__ import annotations

import json
import os
import re

from cnn_tui.core.errors import TaskStopped
from cnn_tui.core.events import Notice
from cnn_tui.core.models.model import NetModel
from cnn_tui.core.runs import control
from cnn_tui.tui.screens.confirm import ChoiceScreen, ConfirmScreen
from cnn_tui.tui.widgets.charts import HistoryChart

from tui_helpers import (
    choose_file,
    column_labels,
    logged,
    make_app,
    run_record,
    status,
    table,
    text_of,
    wait_for,
    wait_idle,
    wait_run_ended,
)

SMALL = dict(classes=3, per_class=12, test_per_class=6, size=12)


async def test_a_task_is_one_value_made_when_it_starts_and_dropped_when_it_ends(in_tmp):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main, shown = app.main, []
        controller = main.task_controller

        def wait_for_x(emit, stop):
            emit(Notice("working on it", "info"))
            stop.wait(60)
            raise TaskStopped("after the first step")

        async def show(result):
            shown.append(result)

        controller.start("probe", "probing", wait_for_x, show)
        first = controller.current
        assert (first.name, first.label, first.follows_run) == ("probe", "probing", False)
        assert main.session.busy == "probing" and main.session.stoppable
        await wait_for(pilot, lambda: "working on it" in logged(app), what="the task's notice")
        await pilot.press("x")
        await wait_idle(pilot)
        assert controller.current is None and first.stop.is_set() and shown == []
        assert "probing stopped: after the first step" in logged(app)
        controller.start("probe", "probing again", lambda emit, stop: "done", show, stoppable=False)
        second = controller.current
        assert second is not first and not second.stop.is_set() and not main.session.stoppable
        await wait_idle(pilot)
        assert shown == ["done"] and controller.current is None and main.session.busy is None


async def test_load_initialise_train_evaluate_and_predict(params_files, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 2})
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        assert len(main.session.train_set) == 36
        counts = text_of(app, "#training-panel .dataset-counts")
        for name in "012":
            assert re.search(rf"^\s*{name}\s+12\s+█{{24}}\s*$", counts, re.M), counts
        assert "Training set 36 images · 3 classes · 12×12×1" in text_of(app, "#training-panel .dataset-heading")
        assert len(main.query("#training-panel .thumb")) == 9  # 3 samples for each of 3 classes

        await pilot.press("i")
        await wait_idle(pilot)
        summary = table(app, "#summary-table")
        assert summary.row_count == 8 and str(summary.get_row_at(0)[0]) == "conv2d"
        assert "Total params: 3,099 (12.11 KB)" in text_of(app, "#model-totals")
        assert main.query_one("#views").active == "model"

        await pilot.press("v")
        await wait_idle(pilot)
        epochs = table(app, "#epoch-table")
        assert epochs.row_count == 2
        history = main.query_one("#accuracy-chart", HistoryChart).history
        assert len(history["accuracy"]) == 2 and len(history["val_accuracy"]) == 2
        assert main.query_one("#loss-chart", HistoryChart).history["val_loss"] == history["val_loss"]
        run = main.session.run_dir
        assert (run / "train_val_plots.png").stat().st_size > 1000
        record = run_record(run)
        # the run's own process trained the TUI's model (saved into the run folder) and ended the run
        assert record["status"] == "finished" and record["exit_code"] == 0 and record["command"] == "cnn-tui (TUI)"
        assert record["pid"] != os.getpid() and (run / "start_model.keras").exists()
        assert record["details"]["validation_samples"] > 0
        assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
        assert main.session.history["val_accuracy"] == history["val_accuracy"]
        assert main.session.model.source == run / "model.keras"  # what the run trained is the model now
        assert f"curves {run.relative_to(in_tmp)}/train_val_plots.png" in text_of(app, "#training-files")
        assert "model trained 2 epochs" in text_of(app, "#infobar")

        await pilot.press("L")
        await wait_idle(pilot)
        await pilot.press("e")
        await wait_idle(pilot)
        assert "test accuracy" in text_of(app, "#metrics")
        assert not main.query_one("#confusion-box").display  # Evaluation: no confusion matrix
        evaluation = main.session.evaluation
        assert f"{evaluation.accuracy * 100:.2f} %" in text_of(app, "#metrics")
        evaluated = run_record(main.session.run_dir)  # in this process, but a run folder the core ended
        assert evaluated["task"] == "evaluate" and evaluated["status"] == "finished"
        assert evaluated["details"]["accuracy"] == evaluation.accuracy

        await pilot.press("p")
        await wait_idle(pilot)
        confusion = table(app, "#confusion-table")
        assert column_labels(confusion) == ["true \\ pred", "0", "1", "2"]
        assert confusion.row_count == 3
        matrix = main.session.evaluation.confusion()
        assert [int(str(c).strip()) for c in confusion.get_row_at(1)[1:]] == matrix[1].tolist()
        assert column_labels(table(app, "#report-table")) == ["class", "precision", "recall", "F1", "support",
                                                             "precision 95 %", "recall 95 %"]
        assert (main.session.run_dir / "confusion_matrix.png").exists()


async def test_stop_training_keeps_the_model_and_whole_epochs(params_files, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 400, "batch_size": 4})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("i")
        await wait_idle(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: table(app, "#epoch-table").row_count >= 1, what="a first epoch")
        assert main.check_action("run", ("stop",)) is True and main.check_action("run", ("train",)) is False
        await pilot.press("t")  # a second task is refused, with the reason
        assert "Training only: training is running; wait for it or stop it (x)" in logged(app)
        await pilot.press("c")  # Snap, while training: into this run's folder
        snaps = list(main.session.run_dir.glob("snap-*-training.svg"))
        assert len(snaps) == 1 and f"screenshot saved: {snaps[0]}" in logged(app)
        assert "<svg" in snaps[0].read_text()[:200]
        await pilot.press("x")
        await wait_idle(pilot, timeout=30)
        record = json.loads((main.session.run_dir / "run.json").read_text())
        assert record["status"] == "stopped"
        done = record["details"]["epochs_done"]
        assert 1 <= done < 400
        assert main.session.model is not None
        assert f"trained {done} epoch" in main.session.model_note and "of 400 (stopped)" in main.session.model_note
        assert (main.session.run_dir / "model.keras").exists()
        assert status(app).startswith("stopped by the user after")


async def test_stop_tuning_shows_partial_grid_results(params_files, in_tmp):
    grid = {"init_rate": [0.05, 0.02], "num_filters": [4, 8], "epochs": 30, "batch_size": 4}
    data, hyper = params_files(**SMALL, hyper=grid)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 40)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("u")
        await wait_for(pilot, lambda: table(app, "#folds-table").row_count >= 1, timeout=120, what="a first fold")
        assert "Tuning 4 combination(s) × 3 folds = 12 fits on 36 images" in text_of(app, "#tuning-title")
        await pilot.press("x")
        await wait_idle(pilot, timeout=60)
        result = main.session.tuning
        assert result.status == "stopped"
        assert 1 <= len(result.rows) < 12
        assert text_of(app, "#results-title").startswith(f"Partial grid search results · {len(result.rows)} of 12 fits")
        results = table(app, "#results-table")
        assert results.row_count == len(result.table())
        # the figures first, the tuned values after them (they scroll sideways at 80 columns, not these)
        assert column_labels(results)[:7] == ["", "mean acc %", "std %", "mean loss", "folds", "trained", "init_rate"]
        assert str(results.get_row_at(0)[0]) == "★"
        assert (main.session.run_dir / "tuning_results.csv").exists()
        # the best combination can go into the hyper params
        await pilot.press("b")
        best = result.best()
        assert {k: main.session.hyper.values[k] for k in best} == best
        assert main.session.hyper.values["epochs"] == 30


async def test_large_grid_asks_before_tuning(params_files, in_tmp):
    grid = {name: [1, 2] for name in ("decay_steps", "kernel_size", "num_filters", "num_units", "epochs", "batch_size")}
    grid["init_rate"] = [0.1, 0.2]
    data, hyper = params_files(**SMALL, hyper=grid)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "128 combinations × 3 folds = 384" in str(app.screen.query_one("#confirm-question").content)
        await pilot.press("n")
        await pilot.pause()
        assert app.main.session.busy is None and app.main.session.tuning is None


async def test_a_long_search_asks_before_tuning_whatever_its_size(params_files, in_tmp):
    """Two combinations of 20,000 epochs: few combinations, yet a long wait, so u asks (issue 20.12)."""
    data, hyper = params_files(**SMALL, hyper={"num_units": [4, 6], "epochs": 20000})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one("#confirm-question").content)
        assert "2 combinations × 3 folds = 6 trainings of 20000+ epochs each. About " in question
        await pilot.press("n")
        await pilot.pause()
        assert app.main.session.busy is None and not list((in_tmp / "results").glob("*-tune"))


async def test_a_grid_over_the_limit_offers_a_random_sample_instead(params_files, in_tmp, monkeypatch):
    """A grid too large to list is never listed: the dialog says why and offers a random search."""
    monkeypatch.setenv("CNN_TUI_MAX_COMBINATIONS", "4")
    data, hyper = params_files(**SMALL, hyper={"num_units": [4, 6, 8], "num_filters": [2, 3], "epochs": 1})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        question = str(app.screen.query_one("#confirm-question").content)
        assert "6 combinations, more than the limit of 4" in question and "at random" in question
        await pilot.press("c")  # cancel: nothing starts
        await pilot.pause()
        assert app.main.session.busy is None
        assert not list((in_tmp / "results").glob("*-tune"))


async def test_saved_model_reloads_for_evaluation_in_a_new_session(params_files, tmp_path, in_tmp):
    """Test scenario 2: train, save the model, quit; later open params + model + test set, evaluate."""
    data, hyper = params_files(**SMALL, hyper={"epochs": 1})
    saved = tmp_path / "models" / "digits.keras"
    saved.parent.mkdir()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("i")
        await wait_idle(pilot)
        await pilot.press("t")
        await wait_idle(pilot)
        await pilot.press("W")
        await choose_file(pilot, saved)
        await wait_idle(pilot)
        assert saved.exists() and status(app) == f"model saved: {saved}"
        trained = app.main.session.model
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code in (0, None)

    again = make_app(data, hyper, model=saved)
    async with again.run_test(size=(100, 30)) as pilot:
        await wait_idle(pilot)
        net = again.main.session.model
        assert net.class_names == trained.class_names and "loaded digits.keras" in text_of(again, "#infobar")
        await pilot.press("L")
        await wait_idle(pilot)
        await pilot.press("p")
        await wait_idle(pilot)
        assert again.main.session.evaluation.samples == 18
        assert table(again, "#confusion-table").row_count == 3


async def test_model_that_does_not_fit_the_data_is_a_readable_error(params_files, image_folder, tmp_path, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 1})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("i")
        await wait_idle(pilot)
        model_path = main.session.model.save(tmp_path / "three.keras")
        # now a four-class dataset with the same image size
        four = tmp_path / "four"
        image_folder("four/training", classes=4, per_class=6, size=12)
        image_folder("four/testing", classes=4, per_class=3, size=12)
        four_params = tmp_path / "four.json"
        four_params.write_text(json.dumps({"num_classes": 4, "train_dir": str(four / "training"),
                                           "test_dir": str(four / "testing"), "image_size": 12}))
        main.params.load_params_file("data", four_params)
        main.task_controller.load_model(model_path)
        await wait_idle(pilot)
        await pilot.press("L")
        await wait_idle(pilot)
        assert status(app) == f"{four / 'testing'}: test classes differ from the model's classes: unexpected 3"
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("t")
        await wait_idle(pilot)
        assert status(app) == f"{model_path}: the model classifies 3 classes but the training set has 4"
        assert app.screen is main and main.session.model is not None
        assert not (tmp_path / "results").exists()  # refused before any run folder was made
        assert app.screen is main


async def test_quit_while_training_offers_to_leave_it_running_or_to_stop_it(params_files, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 400, "batch_size": 4})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in "li":
            await pilot.press(key)
            await wait_idle(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: table(app, "#epoch-table").row_count >= 1, what="a first epoch")
        run = app.main.session.run_dir
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert app.screen.focused.id == "choice-leave"  # Enter leaves it running
        assert "run " + run.name in str(app.screen.query_one("#confirm-question").content)
        await pilot.press("c")  # cancel: nothing changes
        await pilot.pause()
        assert app.screen is app.main and app.main.session.busy == "training"
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("s")  # stop it, and quit
        await wait_for(pilot, lambda: not app.is_running, timeout=30, what="the app to exit")
    record = await wait_run_ended(run, timeout=60)
    assert record["status"] == "stopped" and 1 <= record["details"]["epochs_done"] < 400
    assert NetModel.load(run / "model.keras").class_names == ["0", "1", "2"]


async def test_quit_and_leave_the_run_running_then_it_finishes_alone(params_files, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 6, "batch_size": 4})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in "li":
            await pilot.press(key)
            await wait_idle(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: table(app, "#epoch-table").row_count >= 1, what="a first epoch")
        run = app.main.session.run_dir
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("enter")  # the default: leave it running
        await wait_for(pilot, lambda: not app.is_running, timeout=30, what="the app to exit")
    assert control.is_running(run) or run_record(run)["status"] == "finished"
    record = await wait_run_ended(run, timeout=120)
    assert record["status"] == "finished" and record["details"]["epochs_done"] == 6
    assert len((run / "history.csv").read_text().splitlines()) == 7


async def test_prediction_with_tta_shows_its_figures_beside_the_plain_ones(params_files, in_tmp):
    data, hyper = params_files(**SMALL, hyper={"epochs": 1})
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("i")
        await wait_idle(pilot)
        await pilot.press("L")
        await wait_idle(pilot)
        await pilot.press("E")
        await wait_idle(pilot)
        ev = app.main.session.evaluation
        assert ev is not None and ev.tta and ev.views[0] == "identity"
        metrics = text_of(app, "#metrics")
        assert f"{len(ev.views)} views averaged" in metrics and "plain accuracy" in metrics
        assert "with test-time augmentation" in status(app)
        written = json.loads((app.main.session.run_dir / "evaluation.json").read_text())
        assert written["tta"] is True and written["tta_views"] == ev.views
