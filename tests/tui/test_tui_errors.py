"""What the user's data can get wrong shows as one readable line, and the app carries on."""

from __future__ import annotations

import json

from textual.widgets import Input

from tui_helpers import make_app, status, text_of, wait_idle

SMALL = dict(classes=3, per_class=12, test_per_class=6, size=12)


async def test_corrupt_files_are_skipped_and_listed(params_files, in_tmp):
    data, hyper = params_files(**SMALL)
    broken = data.parent.parent / "data" / "training" / "1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        assert len(app.main.session.train_set) == 36
        counts = text_of(app, "#training-panel .dataset-counts")
        assert "skipped 1 unreadable file(s):" in counts and "broken.png" in counts
        assert any("skipped 1 file(s)" in text for _, text in app.main.messages)


async def test_missing_folder_and_wrong_class_count(params_files, write_json, in_tmp):
    data, hyper = params_files(**SMALL)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        missing = write_json("missing.json", {"num_classes": 3, "train_dir": "nowhere", "test_dir": "nowhere",
                                              "image_size": 12})
        main.params.load_params_file("data", missing)
        await pilot.press("l")
        await wait_idle(pilot)
        assert status(app).startswith(str(in_tmp / "nowhere")) and "training folder" in status(app)
        assert main.session.train_set is None and app.screen is main
        four = write_json("four.json", {**json.loads(data.read_text()), "num_classes": 4,
                                        "train_dir": str(data.parent.parent / "data" / "training")})
        main.params.load_params_file("data", four)
        await pilot.press("l")
        await wait_idle(pilot)
        assert "has 3 class folders (0, 1, 2) but num_classes is 4" in status(app)


async def test_out_of_memory_is_explained(params_files, in_tmp, monkeypatch):
    data, hyper = params_files(**SMALL)

    def too_big(*_args, **_kwargs):
        raise MemoryError()

    monkeypatch.setattr("cnn_tui.core.runs.steps.load_training_set", too_big)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        assert status(app) == ("loading the training set failed: out of memory: try a smaller batch_size, "
                               "num_units, num_filters or image_size")
        assert app.main.session.busy is None and app.main.check_action("run", ("load_train",)) is True


async def test_an_unexpected_error_is_one_line_and_logged(params_files, in_tmp, monkeypatch, caplog):
    data, hyper = params_files(**SMALL)

    def bug(*_args, **_kwargs):
        raise KeyError("shape")

    monkeypatch.setattr("cnn_tui.core.runs.steps.load_training_set", bug)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        await wait_idle(pilot)
        assert status(app) == "loading the training set failed: KeyError: 'shape'"
        assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


async def test_edited_data_params_keep_their_file(params_files, in_tmp):
    data, hyper = params_files(**SMALL)
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("d")
        await pilot.pause()
        app.screen.query_one("#field-validation_split", Input).value = "0.25"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        session = app.main.session
        assert session.data.validation_split == 0.25 and session.data.source == data
        assert "data data* │" in text_of(app, "#infobar")
