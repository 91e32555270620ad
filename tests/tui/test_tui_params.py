"""Params through the UI: file dialogs, forms with validation as you type, readable errors,
and actions that are disabled until their prerequisites exist (and say why)."""

from __future__ import annotations

import json

from textual.widgets import Button, Input, OptionList

from cnn_tui.core.params.files import HyperParams
from cnn_tui.tui.actions import ACTIONS
from cnn_tui.tui.screens.menu import MenuScreen

from tui_helpers import choose_file, make_app, open_form, status, text_of


async def test_load_data_and_hyper_params_through_the_file_dialogs(params_files, in_tmp):
    data, hyper = params_files(classes=3)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.main.session.data is None
        await pilot.press("o")
        await choose_file(pilot, data)
        await pilot.press("O")
        await choose_file(pilot, hyper)
        session = app.main.session
        assert session.data is not None and session.data.num_classes == 3
        assert session.data.train_path == data.parent.parent / "data" / "training"
        assert session.hyper is not None and session.hyper.first().num_filters == 8
        info = text_of(app, "#infobar")
        assert "data data │" in info and "hyper hyper │" in info
        assert "hyper params loaded from" in status(app)
        # the Data view lists what was loaded
        shown = text_of(app, "#data-params")
        assert "Number of classes" in shown and "../data/training" in shown


async def test_bad_json_gives_one_readable_line_and_keeps_what_was_loaded(params_files, write_json, in_tmp):
    data, hyper = params_files()
    broken = write_json("broken.json", '{"init_rate": 0.1,')
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("O")
        await choose_file(pilot, broken)
        assert status(app) == (f"{broken}: not valid JSON (line 1, column 19: Expecting property name enclosed "
                               "in double quotes)")
        assert app.main.session.hyper.source == hyper  # nothing the user had is lost
        assert app.screen is app.main  # no crash, no traceback screen
        wrong = write_json("wrong.json", {"num_classes": "ten", "train_dir": "a", "test_dir": "b", "image_size": 28})
        await pilot.press("o")
        await choose_file(pilot, wrong)
        assert status(app) == f"{wrong}: num_classes must be a whole number, got 'ten'"
        assert app.main.session.data.source == data


async def test_hyper_form_checks_as_you_type_and_keeps_lists(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot, "h")
        rate = form.query_one("#field-init_rate", Input)
        rate.value = "-1"
        await pilot.pause()
        assert str(form.query_one("#error-init_rate").content) == "init_rate must be greater than 0, got -1"
        assert form.query_one("#ok", Button).disabled
        rate.value = "0.02, 0.01"
        form.query_one("#field-batch_size", Input).value = "8,16"
        await pilot.pause()
        assert str(form.query_one("#error-init_rate").content) == ""
        assert not form.query_one("#ok", Button).disabled
        assert "2 × 2 = 4 combinations" in str(form.query_one("#form-notes").content)
        await pilot.click("#ok")
        await pilot.pause()
        assert app.screen is app.main
        hyper_now = app.main.session.hyper
        assert hyper_now.values["init_rate"] == [0.02, 0.01] and hyper_now.values["batch_size"] == [8, 16]
        assert "hyper hyper* │" in text_of(app, "#infobar")  # edited, not saved yet
        # Escape leaves everything as it was
        await pilot.press("h")
        await pilot.pause()
        app.screen.query_one("#field-epochs", Input).value = "99"
        await pilot.press("escape")
        await pilot.pause()
        assert app.main.session.hyper.values["epochs"] == 2


async def test_save_hyper_params_writes_the_edited_values(params_files, tmp_path, in_tmp):
    data, hyper = params_files()
    app = make_app(data, hyper)
    target = tmp_path / "saved_hyper.json"
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("h")
        await pilot.pause()
        app.screen.query_one("#field-num_units", Input).value = "16,32"
        await pilot.pause()
        await pilot.press("enter")  # Enter in a field is OK
        await pilot.press("S")
        await choose_file(pilot, target)
        assert json.loads(target.read_text())["num_units"] == [16, 32]
        assert HyperParams.load(target).values["num_units"] == [16, 32]
        assert "hyper saved_hyper │" in text_of(app, "#infobar")  # saved: no '*' any more


async def test_new_data_params_form_flags_missing_folders(in_tmp):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert str(form.query_one("#error-train_dir").content) == "train_dir is empty"
        assert form.query_one("#ok", Button).disabled
        (in_tmp / "train" / "a").mkdir(parents=True)
        (in_tmp / "train" / "b").mkdir()
        form.query_one("#field-num_classes", Input).value = "2"
        form.query_one("#field-train_dir", Input).value = "train"
        form.query_one("#field-test_dir", Input).value = "test"
        await pilot.pause()
        notes = str(form.query_one("#form-notes").content)
        assert "2 class folders in" in notes and "test does not exist yet" in notes
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.session.data.num_classes == 2
        assert "data unsaved" in text_of(app, "#infobar")


async def test_disabled_actions_say_why_in_footer_keys_menu_and_palette(params_files, in_tmp):
    data, hyper = params_files()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        assert main.check_action("run", ("train",)) is None  # shown disabled in the footer
        assert main.check_action("run", ("stop",)) is False  # hidden while nothing runs
        assert main.check_action("run", ("about",)) is True
        await pilot.press("t")
        assert status(app) == "Training only: load data params first (o), or create them (n)"
        await pilot.press("e")
        assert status(app) == "Evaluation: initialise a network model (i) or load one (M) first"
        # the menu dims the item and the line under it says why
        await pilot.press("m", "right")
        await pilot.pause()
        menu = app.screen
        assert isinstance(menu, MenuScreen) and menu.menu == "Tasks"
        options = menu.query_one(OptionList)
        options.highlighted = [a.name for a in menu.items].index("train")
        await pilot.pause()
        assert str(menu.query_one("#menu-description").content) == (
            "unavailable: load data params first (o), or create them (n)")
        await pilot.press("enter")  # choosing it anyway explains instead of doing nothing
        await pilot.pause()
        assert app.screen is main
        assert status(app) == "Training only: load data params first (o), or create them (n)"
        # the command palette lists every action with the reason
        commands = {c.title: c.help for c in app.get_system_commands(main)}
        assert commands["Tasks: Tuning"] == "unavailable: load data params first (o), or create them (n)"
        assert commands["Help: About"].startswith("version, backend")
        # loading the params moves the reason on to the next missing step
        main.params.load_params_file("data", data)
        main.params.load_params_file("hyper", hyper)
        await pilot.pause()
        assert main.session.why_not("train") == "load a training dataset first (l)"
        assert main.session.why_not("tune") == "load a training dataset first (l)"
        assert main.session.why_not("init_model") is None


async def test_every_action_runs_through_the_table_entry_it_names(in_tmp):
    """One binding per action, ``run('<name>')``, and what it calls is a method of the screen or of a part;
    the screen keeps no ``action_<name>`` method of its own for them."""
    app = make_app()
    async with app.run_test(size=(100, 30)):
        main = app.main
        bound = {b.key: b.action for b in main.BINDINGS}
        for action in ACTIONS:
            assert bound[action.key] == f"run('{action.name}')", action.name
            part, _, method = action.calls.rpartition(".")
            assert callable(getattr(getattr(main, part) if part else main, method)), action.calls
            assert not hasattr(main, f"action_{action.name}"), action.name


async def test_a_key_a_menu_item_and_a_palette_command_call_the_same_method(in_tmp, monkeypatch):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        calls: list[str] = []
        monkeypatch.setattr(main.params, "new_hyper", lambda: calls.append("params.new_hyper"))
        await pilot.press("N")
        await pilot.pause()
        await pilot.press("m")
        await pilot.pause()
        await pilot.press("N")  # the App menu's item, by its key
        await pilot.pause()
        command = next(c for c in app.get_system_commands(main) if c.title == "App: New hyper params")
        command.callback()
        await pilot.pause()
        assert calls == ["params.new_hyper"] * 3 and app.screen is main


async def test_snap_saves_any_screen_and_says_where(in_tmp):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")  # a menu is open: F12 still snaps
        await pilot.pause()
        await pilot.press("f12")
        await pilot.pause()
        snaps = list((in_tmp / "results").glob("snap-*-menu.svg"))
        assert len(snaps) == 1 and "New&#160;data&#160;params" in snaps[0].read_text()  # the open menu
        assert app.main.messages[-1] == ("success", f"screenshot saved: {snaps[0]}")
