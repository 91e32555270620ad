"""What used to be cut or wrapped badly at 120 columns, checked on the live widgets (the snapshots in
test_tui_snapshots.py show every view at 80×24 and 120×36)."""

from __future__ import annotations

import pytest
from test_tui_snapshots import lung_evaluation  # a fixed 4-class result with long class names

from cnn_tui.tui.session import Session

from tui_helpers import make_app, text_of, wait_idle


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_a_loaded_sets_heading_stays_on_one_line_and_says_where_its_pixels_came_from(size, params_files,
                                                                                            in_tmp):
    # 10 classes of 16×16: the demo's heading, which wrapped "decoded" onto a line alone at 120 columns
    data, hyper = params_files(classes=10, per_class=100, test_per_class=1, size=16)
    app = make_app(data, hyper)
    async with app.run_test(size=size) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        heading = app.main.query_one("#training-panel .dataset-heading")
        assert text_of(app, "#training-panel .dataset-heading").strip() == \
            "Training set 1,000 images · 10 classes · 16×16×1"
        assert heading.size.height == 1
        counts = text_of(app, "#training-panel .dataset-counts")
        assert counts.splitlines()[0].strip() == "decoded from the image files"


@pytest.mark.parametrize(("width", "side"), [(120, False), (140, False), (220, True)])
async def test_the_report_sits_beside_the_matrix_only_where_both_fit_whole(width, side, in_tmp):
    app = make_app(session=Session(evaluation=lung_evaluation(), model_note="trained 20 epochs"))
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        await pilot.pause()
        view = app.main.query_one("EvaluationView")
        body = view.query_one("#evaluation-body")
        assert body.has_class("-side") is side
        report = view.query_one("#report-table")
        support = report.get_column_index("support")
        right_edge = report.region.x + sum(c.get_render_width(report) for c in list(report.columns.values())[:support + 1])
        assert right_edge <= view.scrollable_content_region.right  # the support column is on screen
