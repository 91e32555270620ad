"""What used to be cut or wrapped badly at 120 columns, checked on the live widgets (the snapshots in
test_tui_snapshots.py show every view at 80×24 and 120×36)."""

from __future__ import annotations

import pytest

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
