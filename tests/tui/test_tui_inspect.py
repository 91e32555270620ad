"""Error analysis in the TUI: Enter on a confusion-matrix cell lists exactly its images, T lists the top
losses and the most confused pairs, Enter on a listed image inspects it (Grad-CAM, feature maps, PNGs),
I asks for a model first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from textual.widgets import DataTable, Label

from cnn_tui.core.inspect import mistakes
from cnn_tui.core.models.model import build_model
from cnn_tui.core.params.files import HyperParams
from cnn_tui.core.training.evaluation import Evaluation
from cnn_tui.tui.screens.inspect import ImageScreen, MistakesScreen
from cnn_tui.tui.session import Session

from tests_support import TINY_HYPER, write_image_folder
from tui_helpers import logged, make_app, plain, wait_for, wait_idle

NAMES = ["0", "1", "2"]


def _evaluation(root: Path) -> Evaluation:
    """Real image files with fixed predictions: class 1 has two images predicted as 2, one as 0."""
    write_image_folder(root, 3, per_class=4, size=12)
    files = [str(root / str(k) / f"img_{i:03d}.png") for k in range(3) for i in range(4)]
    y_true = np.repeat(np.arange(3), 4)
    y_pred = np.array([0, 0, 0, 1, 2, 1, 2, 0, 2, 2, 2, 2])
    probabilities = np.full((12, 3), 0.1, np.float32)
    probabilities[np.arange(12), y_pred] = 0.8
    probabilities[6] = [0.02, 0.03, 0.95]  # the most confident mistake: a 1 taken for a 2
    return Evaluation(NAMES, y_true, probabilities, files, 1.0)


def _rows(table: DataTable) -> list[list[str]]:
    return [[plain(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_enter_on_a_cell_lists_its_images_and_inspects_one(in_tmp):
    ev = _evaluation(in_tmp / "testing")
    net = build_model(HyperParams.from_dict(TINY_HYPER).first(), image_size=12, channels=1, class_names=NAMES)
    run_dir = in_tmp / "results" / "run"
    run_dir.mkdir(parents=True)
    app = make_app(session=Session(evaluation=ev, model=net, model_note="new", run_dir=run_dir))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")  # the Evaluation view; the matrix takes the focus
        await wait_for(pilot, lambda: app.main.view("evaluation").query_one("#confusion-table").row_count == 3,
                       what="the confusion matrix")
        matrix = app.main.query_one("#confusion-table", DataTable)
        assert app.focused is matrix
        await pilot.press("down", "right", "right", "right", "enter")  # row "1", column "2"
        await wait_for(pilot, lambda: isinstance(app.screen, MistakesScreen), what="the cell's list")
        screen = app.screen
        listed = _rows(screen.query_one("#mistakes-table", DataTable))
        expected = mistakes.cell(ev, 1, 2)
        assert len(listed) == ev.confusion()[1, 2] == 2
        # shown inside the test folder, the most confident first (95 %)
        assert [row[1] for row in listed] == [str(Path(e.file).relative_to(in_tmp / "testing")) for e in expected]
        assert [row[1] for row in listed] == ["1/img_002.png", "1/img_000.png"]
        assert all(row[2:4] == ["1", "2"] for row in listed)
        assert plain(screen.query_one("#mistakes-title", Label).content) == "2 test images of class 1 predicted as 2"
        assert "p(true) 3.0%" in plain(screen.query_one("#mistake-details").content)
        await pilot.press("enter")  # inspect the first: Grad-CAM of the predicted and the true class, feature maps
        await wait_for(pilot, lambda: isinstance(app.screen, ImageScreen), timeout=120, what="the image screen")
        shown = app.screen
        predicted = shown.inspection.features.predicted  # an untrained model: any class, the true one too
        assert [cam.explained for cam in shown.inspection.cams] == [predicted] + (["1"] if predicted != "1" else [])
        titles = [plain(label.content) for label in shown.query(".layer-title")]
        assert titles == ["conv2d (Conv2D) · 12×12 · 8 channels", "conv2d_1 (Conv2D) · 6×6 · 8 channels"]
        files = shown.inspection.files  # named after the class folder too: 1/img_002.png, not any img_002.png
        assert files["gradcam"].parent == run_dir and files["gradcam"].name.startswith("gradcam-1-img_002-")
        assert files["features"].name.startswith("features-1-img_002-") and files["features"].is_file()
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main


async def test_top_losses_and_most_confused(in_tmp):
    ev = _evaluation(in_tmp / "testing")
    app = make_app(session=Session(evaluation=ev))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, MistakesScreen), what="the top losses")
        screen = app.screen
        listed = _rows(screen.query_one("#mistakes-table", DataTable))
        assert len(listed) == int((ev.y_pred != ev.y_true).sum()) == 4
        losses = [float(row[5]) for row in listed]
        assert losses == sorted(losses, reverse=True) and listed[0][1] == "1/img_002.png"
        pairs = _rows(screen.query_one("#confused-table", DataTable))
        assert pairs[0][:3] == ["1", "2", "2"]  # two 1s taken for 2s: the most confused pair
        await pilot.press("enter")  # no model loaded: it says so instead of inspecting
        await pilot.pause()
        assert "Inspect an image: initialise a network model (i) or load one (M) first" in logged(app)
        await pilot.press("escape")
        await pilot.pause()
        await wait_idle(pilot)


async def test_keys_say_what_they_need(in_tmp):
    app = make_app(session=Session())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("T")
        await pilot.press("I")
        await pilot.pause()
        assert "Top losses…: run Prediction (p) first, or open a run that has one (7)" in logged(app)
        assert "Inspect an image…: initialise a network model (i) or load one (M) first" in logged(app)
        assert app.screen is app.main


async def test_i_inspects_a_chosen_file_and_a_bad_one_is_one_line(in_tmp):
    from tui_helpers import choose_file

    write_image_folder(in_tmp / "pics", 3, per_class=1, size=12)
    (in_tmp / "pics" / "junk.png").write_text("not an image")
    net = build_model(HyperParams.from_dict(TINY_HYPER).first(), image_size=12, channels=1, class_names=NAMES)
    app = make_app(session=Session(model=net, model_note="new"))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("I")
        await pilot.pause()
        await choose_file(pilot, in_tmp / "pics" / "junk.png")
        await wait_idle(pilot)
        assert app.screen is app.main
        assert "junk.png: cannot be read as an image" in logged(app)
        await pilot.press("I")
        await pilot.pause()
        await choose_file(pilot, in_tmp / "pics" / "2" / "img_000.png")
        await wait_for(pilot, lambda: isinstance(app.screen, ImageScreen), timeout=120, what="the image screen")
        inspection = app.screen.inspection
        assert inspection.true is None and len(inspection.cams) == 1
        assert [m.channels for m in inspection.features.maps] == [8, 8]
        assert inspection.files["features"].parent == in_tmp  # no run folder: the working folder
        assert inspection.files["features"].name.startswith("features-2-img_000-") and inspection.files["features"].is_file()
