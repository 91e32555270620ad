"""The TUI's Training with validation and calibration (V): the run fits a temperature, kept in the model."""

from __future__ import annotations

from cnn_tui.core.models.model import NetModel

from tui_helpers import logged, make_app, wait_idle


async def test_v_trains_with_validation_and_calibrates_the_model(params_files, in_tmp):
    data, hyper = params_files(classes=3, per_class=12, test_per_class=6, size=12, hyper={"epochs": 1})
    app = make_app(data, hyper)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await pilot.press("l")
        await wait_idle(pilot)
        await pilot.press("i")
        await wait_idle(pilot)
        await pilot.press("V")
        await wait_idle(pilot)
        run = main.session.run_dir
        net = NetModel.load(run / "model.keras")
        assert net.temperature != 1.0 and main.session.model.temperature == net.temperature
        assert "calibrated on" in logged(app) and "temperature" in logged(app)
