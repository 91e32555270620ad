"""The file dialogs: Enter on a file in the open dialog's list picks it (issue 20.15), not only
copies its name into the box for a second Enter."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual_fspicker.parts import DirectoryNavigation

from cnn_tui.tui.screens.files import open_dialog


class Picker(App):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder, self.picked = folder, "not yet"

    def on_mount(self) -> None:
        def chosen(path: Path | None) -> None:
            self.picked = path

        self.push_screen(open_dialog("hyper", self.folder), chosen)


async def test_enter_on_a_file_picks_it(tmp_path):
    (tmp_path / "hyper.json").write_text("{}")
    app = Picker(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        listing = app.screen.query_one(DirectoryNavigation)
        listing.focus()
        await pilot.pause()
        entries = [listing.get_option_at_index(i).location for i in range(listing.option_count)]
        listing.highlighted = entries.index(tmp_path / "hyper.json")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.picked == tmp_path / "hyper.json"  # one Enter: picked, the dialog closed
        assert not isinstance(app.screen, type(open_dialog("hyper", tmp_path)))
