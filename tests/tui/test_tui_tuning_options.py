"""U picks a tuning strategy; j skips the fit a search is training."""

from __future__ import annotations

import json

from cnn_tui.tui.screens.confirm import ChoiceScreen

from tui_helpers import make_app, table, text_of, wait_for, wait_idle

SMALL = dict(classes=3, per_class=12, test_per_class=6, size=12)


async def test_a_hyperband_search_from_the_dialog_and_a_skipped_fit(params_files, in_tmp):
    grid = {"num_filters": [4, 6], "epochs": 40, "batch_size": 2}
    data, hyper = params_files(**SMALL, hyper=grid)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 40)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("U")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert "Hyperband" in str(app.screen.query_one("#confirm-question").content)
        await pilot.press("h")
        await wait_for(pilot, lambda: main.session.run_dir is not None and main.task_controller.following, timeout=60,
                       what="the run process")
        assert json.loads((main.session.run_dir / "task.json").read_text())["strategy"] == "hyperband"
        # two combinations are too few to drop one: one round, every epoch; the first fit is long
        events = main.session.run_dir / "events.jsonl"

        def training() -> bool:  # the first fit has trained some batches
            return events.exists() and '"type": "TuningProgress", ' in events.read_text() and \
                any(json.loads(line).get("batches_done", 0) > 0 for line in events.read_text().splitlines()
                    if '"TuningProgress"' in line)

        await wait_for(pilot, training, timeout=120, what="the first fit training")
        await pilot.press("j")
        await wait_for(pilot, lambda: table(app, "#folds-table").row_count >= 1, timeout=120, what="the skipped fit")
        row = [str(cell) for cell in table(app, "#folds-table").get_row_at(0)]
        assert any("skipped by the user" in cell for cell in row), row
        await pilot.press("x")
        await wait_idle(pilot, timeout=60)
        rows = main.session.tuning.rows
        assert rows[0]["status"] == "pruned" and rows[0]["epochs_done"] < 40


async def test_a_tpe_search_from_the_dialog_says_which_fields_mattered(params_files, in_tmp):
    grid = {"num_units": [8, 32], "init_rate": [0.0001, 0.1], "epochs": 1}  # 4 combinations, all proposed
    data, hyper = params_files(**{**SMALL, "size": 8}, hyper=grid)
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("U")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert "TPE: 4 combinations" in str(app.screen.query_one("#confirm-question").content)
        await pilot.press("t")
        await wait_for(pilot, lambda: main.session.run_dir is not None, timeout=60, what="the run process")
        assert json.loads((main.session.run_dir / "task.json").read_text())["strategy"] == "tpe"
        await wait_for(pilot, lambda: main.session.tuning is not None, timeout=300, what="the search's end")
        await wait_idle(pilot, timeout=60)
        result = main.session.tuning
        assert result.status == "finished" and len(result.rows) == 4 * 3  # 4 combinations x 3 folds
        title = text_of(app, "#results-title")
        assert title.startswith("TPE search results · 12 of 12 fits"), title
        assert result.importance and "mattered: " in title, title
        assert (main.session.run_dir / "field_importance.csv").exists()
