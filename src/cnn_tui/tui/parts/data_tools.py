"""The data tools of the App menu: "Split a folder…" and "Check data health".

Both run as the screen's task (``TaskController.start``: a thread worker, x stops, errors become
one line) and call the core (``core.data.split``, ``core.data.health``); the health report is shown in a
section of the Data view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens import questions
from cnn_tui.tui.screens.split_form import SplitScreen
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.tables import display_path


class DataTools(ScreenPart):
    # ------------------------------------------------------------ split

    def split(self) -> None:
        data = self.session.data
        base = data.base_dir if data is not None else Path.cwd()
        folder = data.train_dir if data is not None else ""

        def chosen(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.start_split(values)

        self.screen.app.push_screen(SplitScreen(base, folder), chosen)

    def start_split(self, values: dict[str, Any]) -> None:
        from cnn_tui.core.data.split import split_folder  # noqa: PLC0415 — imports numpy: not before the first frame

        def job(_emit: Any, stop: Any) -> Any:
            return split_folder(values["folder"], values["out"], test=values["test"], val=values["val"],
                                seed=values["seed"], copy=values["copy"], stop=stop)

        self.screen.task_controller.start("split_folder", f"splitting {display_path(values['folder'])}", job, self.split_done)

    async def split_done(self, result: Any) -> None:
        counts = ", ".join(f"{sum(result.counts[p]):,} {p}" for p in result.parts)
        how = f"{result.linked} hard links, {result.copied} copies" if result.linked else f"{result.copied} copies"
        self.say(f"split into {display_path(result.out)}: {counts} ({how})", "success")
        if result.skipped:
            self.say(f"{len(result.skipped)} file(s) that are not images were left out", "warning")

        def answered(yes: bool | None) -> None:
            if yes:
                self.screen.params.load_params_file("data", result.data_params)

        self.screen.app.push_screen(questions.load_split_params(counts, result.data_params), answered)

    # ------------------------------------------------------------ data health

    def check(self) -> None:
        from cnn_tui.core.data.health import check_data  # noqa: PLC0415 — imports numpy: not before the first frame

        data = self.session.data
        self.screen.task_controller.start("check_data", "checking the data", lambda emit, stop: check_data(
            data, emit=emit, stop=stop), self.checked, view="data")

    async def checked(self, report: Any) -> None:
        self.screen.query_one(DataView).show_health(report)
        if report.ok:
            self.say("data health: no problems found", "success")
        else:
            self.say(f"data health: {len(report.findings)} problem(s); the Data view lists them", "warning")
