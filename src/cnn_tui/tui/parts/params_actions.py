"""The file and form actions of the main screen: new / load / edit / save data and hyper params,
new hyper params from a preset, load / save the model, apply the best tuning combination. Quick,
so they run on the UI thread (loading a model imports Keras and runs in a worker, as the task of
``tui.parts.task_controller``). One ``ParamsActions`` object, held by the main screen, whose action table
names its methods."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cnn_tui.core.errors import UserError
from cnn_tui.core.params import presets
from cnn_tui.core.params.fields import DATA_FIELDS, format_text
from cnn_tui.core.params.files import DataParams, HyperParams
from cnn_tui.tui.parts.screen_part import ScreenPart
from cnn_tui.tui.screens import questions
from cnn_tui.tui.screens.files import open_dialog, save_dialog
from cnn_tui.tui.screens.params_form import ParamsScreen
from cnn_tui.tui.widgets.augment_preview import sample_images
from cnn_tui.tui.widgets.data_view import DataView
from cnn_tui.tui.widgets.tables import display_path


class ParamsActions(ScreenPart):
    """The params and model-file actions of ``screen``, which provides ``session``, ``dirty``, ``say``,
    ``refresh_state``, ``show_view``, ``query_one``, ``call_later``, ``app`` and ``task_controller``."""

    @property
    def dirty(self) -> set[str]:
        return self.screen.dirty

    @property
    def app(self) -> Any:
        return self.screen.app

    def new_data(self) -> None:
        defaults = {f.name: format_text(f.default) for f in DATA_FIELDS}
        self.edit_params("data", None, "New data params", values=defaults)

    def edit_data(self) -> None:
        if self.session.data is None:
            self.new_data()
        else:
            self.edit_params("data", self.session.data, "Data params")

    def new_hyper(self) -> None:
        self.edit_params("hyper", HyperParams.defaults(), "New hyper params (the original CNN App's defaults)", new=True)

    def edit_hyper(self) -> None:
        hyper = self.session.hyper
        self.edit_params("hyper", hyper or HyperParams.defaults(), "Hyper params", new=hyper is None)

    def new_hyper_preset(self) -> None:
        """Pick a preset (core.params.presets), then the hyper form filled with it."""
        names = list(presets.preset_names())[:9]  # a digit key each

        def chosen(name: str | None) -> None:
            if name is None:
                return
            try:
                hyper = presets.preset(name)
            except UserError as exc:
                self.say(str(exc), "error")
                return
            self.edit_params("hyper", hyper, f"New hyper params from the {name} preset", new=True)

        self.app.push_screen(questions.hyper_preset([(name, presets.describe(name)) for name in names]), chosen)

    def edit_params(self, kind: str, params: Any, title: str, *, values: dict[str, str] | None = None,
                    new: bool = False) -> None:
        def done(result: Any) -> None:
            if result is None:
                return
            # a new set has no file yet; an edited one still belongs to its file (saved with s / S)
            source = None if new or params is None else params.source
            result = dataclasses.replace(result, source=source)
            self.dirty.add(kind)
            self.apply_params(kind, result, "new" if new or params is None else "edited")

        sample = None
        if kind == "hyper":  # the augmentation preview's images (two classes, for mixing), read in its worker thread
            session = self.session
            sample = lambda: sample_images(session.data, session.train_set)  # noqa: E731
        self.app.push_screen(ParamsScreen(kind, params, title=title, values=values, sample=sample), done)

    def apply_params(self, kind: str, params: Any, how: str) -> None:
        session = self.session
        notes = session.set_data(params) if kind == "data" else session.set_hyper(params)
        where = f" from {display_path(params.source)}" if how == "loaded" and params.source else ""
        self.say(f"{kind} params {how}{where}", "success")
        for note in (*params.warnings, *notes):
            self.say(note, "warning")
        self.screen.refresh_state()
        if kind == "data":
            for which, images in (("training", session.train_set), ("test", session.test_set)):
                if images is None:
                    self.screen.call_later(self.screen.query_one(DataView).show_set, which, None)

    def load_data(self) -> None:
        self.load_params_dialog("data")

    def load_hyper(self) -> None:
        self.load_params_dialog("hyper")

    def load_params_dialog(self, kind: str) -> None:
        current = getattr(self.session, kind)
        folder = current.source.parent if current is not None and current.source else None

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.load_params_file(kind, path)

        self.app.push_screen(open_dialog(kind, folder), chosen)

    def load_params_file(self, kind: str, path: Path) -> bool:
        try:
            params = DataParams.load(path) if kind == "data" else HyperParams.load(path)
        except UserError as exc:
            self.say(str(exc), "error")
            return False
        self.dirty.discard(kind)
        self.apply_params(kind, params, "loaded")
        return True

    def save_data(self) -> None:
        self.save_params_dialog("data")

    def save_hyper(self) -> None:
        self.save_params_dialog("hyper")

    def save_params_dialog(self, kind: str) -> None:
        params = getattr(self.session, kind)
        folder = params.source.parent if params.source else None
        default = params.source.name if params.source else f"{kind}_params.json"

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.save_params_file(kind, path)

        self.app.push_screen(save_dialog(kind, folder, default), chosen)

    def save_params_file(self, kind: str, path: Path) -> bool:
        params = getattr(self.session, kind)
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        try:
            params.save(path)
            # read back: relative folders are now relative to the new file's folder
            saved = DataParams.load(path) if kind == "data" else HyperParams.load(path)
        except (UserError, OSError) as exc:
            self.say(f"cannot save {kind} params: {exc}", "error")
            return False
        setattr(self.session, kind, saved)
        self.dirty.discard(kind)
        self.say(f"{kind} params saved: {path}", "success")
        self.screen.refresh_state()
        return True

    # ------------------------------------------------------------ model files

    def load_model(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.screen.task_controller.load_model(path)

        self.app.push_screen(open_dialog("model", self.session.run_dir), chosen)

    def save_model(self) -> None:
        source = self.session.model.source

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            if path.suffix != ".keras":
                path = path.with_name(path.name + ".keras")
            self.screen.task_controller.save_model(path)

        folder = Path(source).parent if source else self.session.run_dir
        self.app.push_screen(save_dialog("model", folder, "model.keras"), chosen)

    def apply_rate(self) -> None:
        """A: the finder's rate as init_rate; written into the hyper params file too when the form holds
        nothing unsaved (else it waits, marked unsaved, for S)."""
        from cnn_tui.core.training.lr_finder import apply_rate  # noqa: PLC0415 — imports numpy: not before the first frame

        session = self.session
        rate = session.suggested_rate
        hyper = session.hyper.with_values({"init_rate": rate})
        how = f"init_rate set to {rate:g} (the learning-rate finder's suggestion)"
        if hyper.source is not None and "hyper" not in self.dirty:
            apply_rate(hyper.source, rate)
            how += f", written into {display_path(hyper.source)}"
        else:
            self.dirty.add("hyper")
            how += "; save them (S) to keep it"
        self.apply_params("hyper", hyper, how)

    def apply_best(self) -> None:
        best = self.session.best_hyper
        self.dirty.add("hyper")
        self.apply_params("hyper", best, "set to the best tuning combination")
        self.screen.show_view("data")
        self.screen.query_one(DataView).scroll_home(animate=False)  # where the hyper params are listed

