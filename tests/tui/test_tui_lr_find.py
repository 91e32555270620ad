"""The learning-rate finder from the TUI: the Tasks item (f) starts it as a run, its curve comes up
in a dialog and Apply writes the suggested init_rate into the hyper params file."""

from __future__ import annotations

import json

from cnn_tui.tui.actions import menu_items
from cnn_tui.tui.screens.rate_finder import RateCurve, RateFinderScreen

from tui_helpers import logged, make_app, run_record, text_of, wait_for, wait_idle


async def test_the_tasks_item_runs_the_finder_and_apply_writes_init_rate(params_files, in_tmp):
    data, hyper = params_files(classes=3, per_class=12, test_per_class=6, size=12)
    before = json.loads(hyper.read_text())
    item = next(a for a in menu_items("Tasks") if a.name == "lr_find")
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        assert main.session.why_not("apply_rate") == "run the learning-rate finder (f) first"
        await pilot.press(item.key)
        await wait_for(pilot, lambda: main.session.busy == "learning-rate finder", what="the finder to start")
        run_dir = main.task_controller.current.run_dir
        assert "Learning-rate finder: up to 200 batches" in text_of(app, "#training-title")
        await wait_idle(pilot, timeout=240)
        await wait_for(pilot, lambda: isinstance(app.screen, RateFinderScreen), what="the finder's dialog")
        record = run_record(main.session.run_dir)
        assert record["task"] == "lr_find" and record["status"] == "finished", record.get("message")
        assert run_dir is None or run_dir == main.session.run_dir
        rate = record["details"]["suggested_rate"]
        assert main.session.suggested_rate == rate and len(app.screen.query_one(RateCurve).rates) > 5
        await pilot.press("A")
        await wait_for(pilot, lambda: not isinstance(app.screen, RateFinderScreen), what="the dialog to close")
        after = json.loads(hyper.read_text())
        assert after["init_rate"] == rate and list(after) == list(before)
        assert main.session.hyper.first().init_rate == rate
        assert "written into" in logged(app)
