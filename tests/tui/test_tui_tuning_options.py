"""U picks a tuning strategy; j skips the fit a search is training."""

from __future__ import annotations

import json

from cnn_tui.tui.screens.confirm import ChoiceScreen

from tui_helpers import make_app, table, wait_for, wait_idle

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
