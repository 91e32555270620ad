"""App menu "Export model…": a dialog whose path follows the format, then the export and its
parity check as a task, the agreement on the status line."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from cnn_tui.core.models import export
from cnn_tui.core.models.model import NetModel
from cnn_tui.tui.screens.export_form import ExportScreen
from cnn_tui.tui.session import Session
from cnn_tui.tui.widgets.form import ParamsForm

from tui_helpers import logged, make_app, wait_for, wait_idle


def _tiny_model(path):
    from cnn_tui.core.backend import load_keras

    keras = load_keras()
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    return NetModel(model, ["0", "1", "2"], 12, 1).save(path)


def test_export_needs_a_model():
    assert Session().why_not("export_model") == "initialise a network model (i) or load one (M) first"


async def test_export_a_loaded_model_checked_on_the_test_set(params_files, in_tmp):
    if export.missing_packages("litert"):
        pytest.skip("LiteRT export needs TensorFlow, not installed here")
    data, hyper = params_files(size=12)
    saved = _tiny_model(in_tmp / "tiny.keras")
    app = make_app(data, hyper, model=saved)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot)
        await pilot.press("L")
        await wait_idle(pilot)
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), what="the export dialog")
        form = app.screen.query_one(ParamsForm)
        assert form.texts()["out"] == str(in_tmp / "tiny_saved_model")
        app.screen.query_one("#field-format", Select).value = "litert"
        await pilot.pause()
        assert form.texts()["out"] == str(in_tmp / "tiny.tflite")  # the default path follows the format
        assert form.texts()["check"] == "the test set"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen), what="the dialog to close")
        await wait_idle(pilot)
        assert (in_tmp / "tiny.tflite").is_file()
        assert "exported to tiny.tflite" in logged(app)
        assert "agreement 100.00 % on 18 images" in logged(app) and "(the test set)" in logged(app)
