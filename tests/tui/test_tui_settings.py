"""The theme chosen in one session is the theme of the next (settings.json in the config folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnn_tui.tui.settings import read_settings, settings_path

from tui_helpers import make_app


async def test_the_chosen_theme_is_remembered():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        default = app.theme
        await pilot.pause()
        assert not settings_path().exists()  # starting writes nothing
        app.theme = "nord" if default != "nord" else "gruvbox"
        await pilot.pause()
        chosen = app.theme
    assert settings_path().parent == Path(os.environ["CNN_TUI_CONFIG_DIR"])
    assert json.loads(settings_path().read_text()) == {"theme": chosen}
    again = make_app()
    async with again.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert again.theme == chosen


async def test_a_broken_settings_file_is_the_defaults():
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text('{"theme": ')
    assert read_settings() == {}
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "textual-dark"
        app.theme = "nord"
        await pilot.pause()
    assert read_settings() == {"theme": "nord"}
