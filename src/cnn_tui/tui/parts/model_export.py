"""App menu "Export model…": the dialog, then the export and its parity check as the screen's task
(a thread worker; errors become one line), through ``core.models.export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens.export_form import ExportScreen
from cnn_tui.tui.widgets.tables import display_path


class ModelExport(ScreenPart):
    def open(self) -> None:
        net = self.session.model
        folder = self.session.run_dir or Path.cwd()
        model = Path(net.source) if net.source else folder / "model.keras"

        def chosen(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.start(values)

        self.screen.app.push_screen(ExportScreen(model, test_set_loaded=self.session.test_set is not None), chosen)

    def start(self, values: dict[str, Any]) -> None:
        from cnn_tui.core.models import export  # noqa: PLC0415 — imports numpy: not before the first frame

        net, fmt, out = self.session.model, values["format"], values["out"]
        test_set = self.session.test_set if values["check"] == "test" else None

        def job(_emit: Any, _stop: Any) -> Any:
            images = test_set.x if test_set is not None else None
            return export.export_and_check(net, fmt, out, images, "the test set" if test_set is not None else "")

        # an export cannot be interrupted halfway: Keras's exporters have no stop
        self.screen.task_controller.start("export_model", f"exporting the model to {fmt}", job, self.done, stoppable=False)

    async def done(self, result: Any) -> None:
        from cnn_tui.core.models.model import readable_size  # noqa: PLC0415 — the first frame shows no model (10 ms)

        parity = result.parity
        self.screen.say(f"exported to {display_path(result.path)} ({readable_size(result.size_bytes)}); "
                        f"{parity.line()} ({parity.source})", "success" if parity.ok else "warning")
        if not parity.ok:
            self.screen.say(f"the export agrees with the Keras model on only {parity.agreement:.2%} of the images: "
                            "it does not predict what the model does", "warning")
