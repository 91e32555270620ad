"""Error analysis and a look inside the model, for the main screen: a confusion-matrix cell's images
(Enter on the cell), the top losses (T), and one image inspected (I, or Enter in a list): its Grad-CAM
heatmaps and feature maps, computed as the screen's task (``TaskController.start``) and saved as PNGs in the
run folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens.files import open_dialog
from cnn_tui.tui.widgets.tables import display_path

TOP_LOSSES = 50  # the most confidently wrong images the list shows
CONFUSED = 10  # class pairs in the "most confused" table


class InspectActions(ScreenPart):
    # ------------------------------------------------------------ lists of test images

    def open_cell(self, true: int, predicted: int) -> None:
        """The images of one confusion-matrix cell (rows: true class, columns: predicted)."""
        from cnn_tui.core.inspect import mistakes  # noqa: PLC0415 — imports numpy: not before the first frame
        from cnn_tui.tui.screens.inspect import MistakesScreen  # noqa: PLC0415 — not before the first frame (11 ms)

        ev = self.session.evaluation
        if ev is None:
            return
        names = ev.class_names
        found = mistakes.cell(ev, true, predicted)
        what = "correctly classified" if true == predicted else f"predicted as {names[predicted]}"
        title = f"{len(found)} test image{'s' if len(found) != 1 else ''} of class {names[true]} {what}"
        self.screen.app.push_screen(MistakesScreen(title, found, root=self.root(ev), inspect=self.inspect_file))

    def top_losses(self) -> None:
        from cnn_tui.core.inspect import mistakes  # noqa: PLC0415 — imports numpy: not before the first frame
        from cnn_tui.tui.screens.inspect import MistakesScreen  # noqa: PLC0415 — not before the first frame (11 ms)

        ev = self.session.evaluation
        found = mistakes.top_losses(ev, TOP_LOSSES)
        wrong = int((ev.y_pred != ev.y_true).sum())
        title = (f"Top losses: the {len(found)} most confidently wrong of {ev.samples:,} test images"
                 if wrong else f"No mistakes: all {ev.samples:,} test images are classified right")
        self.screen.app.push_screen(MistakesScreen(title, found, root=self.root(ev),
                                                   confused=mistakes.most_confused(ev, CONFUSED),
                                                   inspect=self.inspect_file))

    @staticmethod
    def root(evaluation: Any) -> str:
        """The test folder (the files' common parent's parent: the class folders are shown)."""
        folders = {os.path.dirname(f) for f in evaluation.files}
        try:
            common = os.path.commonpath(sorted(folders)) if folders else ""
        except ValueError:
            return ""
        return os.path.dirname(common) if len(folders) == 1 else common

    # ------------------------------------------------------------ one image

    def choose_image(self) -> None:
        """I: pick an image file, then inspect it with the loaded model."""
        data = self.session.data
        folder = data.test_path if data is not None and Path(data.test_path).is_dir() else None

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.inspect_file(str(path), None)

        self.screen.app.push_screen(open_dialog("image", folder), chosen)

    def inspect_file(self, path: str, true: str | None) -> bool:
        """Grad-CAM and feature maps of ``path`` (``true``: its class, when the test set says so); False
        when it cannot start (said why)."""
        if reason := self.session.why_not("inspect_image"):
            self.say(f"Inspect an image: {reason}", "warning")
            return False
        from cnn_tui.tui.screens.inspect import ImageScreen, inspect_image  # noqa: PLC0415 — not before the first frame (11 ms)

        net, folder = self.session.model, self.figures_folder()

        async def done(inspection: Any) -> None:
            self.screen.app.push_screen(ImageScreen(inspection))
            self.say(f"predicted {inspection.features.predicted} for {Path(path).name}; figures saved in "
                     f"{display_path(folder)}", "success")

        self.screen.task_controller.start("inspect_image", f"inspecting {Path(path).name}",
                                lambda emit, stop: inspect_image(net, path, true, folder), done, stoppable=False)
        return True

    def figures_folder(self) -> Path:
        """The latest run's folder, else the model's run folder, else here."""
        s = self.session
        if s.run_dir is not None and Path(s.run_dir).is_dir():
            return Path(s.run_dir)
        source = getattr(s.model, "source", None)
        if source is not None and (Path(source).parent / "run.json").is_file():
            return Path(source).parent
        return Path.cwd()
