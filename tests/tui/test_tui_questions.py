"""The main screen's questions are worded in one place (``screens.questions``): what they say, and how a
tuning strategy's answer reads as a strategy and a pruning."""

from __future__ import annotations

import pytest

from cnn_tui.tui.parts.task_controller import ASSUMED_PIXELS_PER_SECOND, tuning_seconds
from cnn_tui.tui.screens import questions
from cnn_tui.tui.screens.confirm import ChoiceScreen, ConfirmScreen


def test_unsaved_params_are_named_in_order():
    assert questions.unsaved_params_note(set()) == ""
    assert questions.unsaved_params_note({"hyper", "data"}) == (
        " The data params and hyper params have changes not saved to a file.")
    dialog = questions.quit_with_unsaved_params(questions.unsaved_params_note({"hyper"}))
    assert isinstance(dialog, ConfirmScreen)
    assert dialog.question == "The hyper params have changes not saved to a file (S saves them). Quit anyway?"
    assert (dialog.yes, dialog.no) == ("Quit", "Stay")
    # the keys named are those that save what is unsaved (s: data params, S: hyper params)
    assert "(s saves them)" in questions.quit_with_unsaved_params(questions.unsaved_params_note({"data"})).question
    both = questions.quit_with_unsaved_params(questions.unsaved_params_note({"data", "hyper"})).question
    assert "(s / S save them)" in both


def test_quitting_while_a_run_goes_offers_to_leave_it_running_first():
    dialog = questions.quit_while_run_goes("training", None, "")
    assert isinstance(dialog, ChoiceScreen) and dialog.default == questions.LEAVE_RUNNING
    assert [answer for answer, _, _ in dialog.choices] == [questions.LEAVE_RUNNING, questions.STOP_RUN, "cancel"]
    assert dialog.question.startswith("Training runs in its own process (run the new run).")
    assert "(run 20250101-train)" in questions.quit_while_run_goes("training", "20250101-train", "").question


def test_every_tuning_strategy_offered_is_a_strategy_and_a_pruning():
    dialog = questions.tuning_strategy(combinations=120, sample=50)
    answers = [answer for answer, _, _ in dialog.choices]
    assert answers == list(questions.TUNING_STRATEGIES) and dialog.default in answers
    assert questions.TUNING_STRATEGIES["grid-median"] == ("grid", "median")
    assert "Grid: all 120 combinations" in dialog.question and "Random: 50 combinations" in dialog.question
    assert "Random: 4 combinations" in questions.tuning_strategy(combinations=4, sample=50).question


def test_grids_say_how_many_trainings_they_mean():
    too_large = questions.grid_too_large(combinations=6000, limit=5000, folds=3, sample=50)
    assert "6,000 combinations, more than the limit of 5,000" in too_large.question
    assert "18,000 trainings" in too_large.question and too_large.default == "cancel"
    assert questions.SEARCH_AT_RANDOM in [answer for answer, _, _ in too_large.choices]
    large = questions.large_grid(combinations=128, folds=3, epochs=2)
    assert "128 combinations × 3 folds = 384 trainings of 2+ epochs each" in large.question
    assert "About 7 minutes. Start?" in questions.large_grid(combinations=32, folds=3, epochs=2, seconds=420).question
    assert "About 2.5 hours" in questions.large_grid(combinations=2, folds=3, epochs=900, seconds=9000).question


def test_tpe_is_offered_and_every_strategy_button_fits_an_80_column_terminal():
    from pathlib import Path

    from textual.app import App

    import cnn_tui.tui
    from cnn_tui.core.tuning.strategies import STRATEGIES

    assert questions.TUNING_STRATEGIES["tpe"] == ("tpe", "none")
    assert all(strategy in STRATEGIES for strategy, _ in questions.TUNING_STRATEGIES.values())
    assert "TPE: 50 combinations, each proposed from the scores of those before" in questions.tuning_strategy(
        combinations=120, sample=50).question

    class Dialog(App):
        CSS_PATH = str(Path(cnn_tui.tui.__file__).parent / "app.tcss")

        def on_mount(self) -> None:
            self.push_screen(questions.tuning_strategy(120, 50))

    async def regions():
        app = Dialog()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return [b.region for b in app.screen.query("Button")]

    import asyncio

    found = asyncio.run(regions())
    assert len(found) == 5
    assert all(r.x >= 0 and r.right <= 80 for r in found), found
    assert all(a.right <= b.x for a, b in zip(found, found[1:])), found  # side by side, none over another


def test_the_tuning_estimate_uses_the_sessions_last_training():
    # 2 combinations x 3 folds x 10 epochs x 2/3 of 300 images, at the assumed speed (16x16 grey: 4,000 a second)
    assert tuning_seconds(2, 3, 10, 300) == pytest.approx(2 * 3 * 10 * 200 / 4000)
    slower = tuning_seconds(2, 3, 10, 300, pixels=32 * 32 * 3)  # twelve times the values an image
    assert slower == pytest.approx(2 * 3 * 10 * 200 / (ASSUMED_PIXELS_PER_SECOND / (32 * 32 * 3)))
    # the last training took 3 s an epoch over 300 images: 100 images a second
    assert tuning_seconds(2, 3, 10, 300, {"seconds": [2.0, 4.0]}, 300) == pytest.approx(2 * 3 * 10 * 200 / 100)
